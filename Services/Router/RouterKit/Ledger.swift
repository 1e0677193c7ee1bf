import BatonProto
import Foundation

/// An open reservation (held or accepted), with what it takes to route its handoff again.
///
/// What cannot change while it is open is a shared ``Record``, so that the table of open reservations holds a few
/// words for each: that table grows by thousands of reservations a second, and growing it moves every one; a whole
/// decision (its reply alone is some 170 bytes of fields) would be moved, and copied with a retain of each field
/// whenever a reservation is read.
struct Reservation: Sendable {
    final class Record: Sendable {
        let id: String
        let handoff: Handoff
        let destinationID: String
        let createdAt: Date
        let expiresAt: Date
        /// Destinations that declined this handoff.
        let excluded: Set<String>
        /// The decision that made it, without its reasons and attempt.
        let decision: Baton_Routing_V1_RouteReply
        let reasons: [Baton_Routing_V1_Reason]
        /// Made while the destination had a free agent: its hello, once reported, is a ring-and-greet time. Not
        /// stored: a reservation restored after a restart teaches nothing.
        let answeredAtOnce: Bool

        init(
            id: String,
            handoff: Handoff,
            destinationID: String,
            createdAt: Date,
            expiresAt: Date,
            excluded: Set<String>,
            decision: Baton_Routing_V1_RouteReply,
            reasons: [Baton_Routing_V1_Reason],
            answeredAtOnce: Bool = false
        ) {
            self.id = id
            self.handoff = handoff
            self.destinationID = destinationID
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.excluded = excluded
            self.decision = decision
            self.reasons = reasons
            self.answeredAtOnce = answeredAtOnce
        }
    }

    let record: Record
    var state: Baton_Routing_V1_Reservation.State
    var acceptedAt: Date?
    /// The decision's attempt, once its write is durable.
    var attempt: UInt32
    /// The write that made the reservation's present state, while it is not durable yet: a call that would answer
    /// from that state waits for it first (RouterCore, "one rule for every change").
    var pending: Commit?

    init(
        _ record: Record,
        state: Baton_Routing_V1_Reservation.State,
        acceptedAt: Date? = nil,
        attempt: UInt32,
        pending: Commit?
    ) {
        self.record = record
        self.state = state
        self.acceptedAt = acceptedAt
        self.attempt = attempt
        self.pending = pending
    }

    var id: String { self.record.id }
    var handoff: Handoff { self.record.handoff }
    var destinationID: String { self.record.destinationID }
    var createdAt: Date { self.record.createdAt }
    var expiresAt: Date { self.record.expiresAt }
    var excluded: Set<String> { self.record.excluded }
}

/// The router's bookkeeping of open reservations: the table by id and by handoff, the held ones by expiry, and each
/// destination's live state (its reported availability and the counts of reservations it holds).
///
/// Every change of the table goes through ``insert(_:)``, ``remove(_:)`` and ``replace(_:)``, which keep the counts
/// of held and accepted reservations in step with it: they are derived here, in one place, from what the table
/// holds.
struct Ledger {
    private(set) var open: [String: Reservation] = [:]
    private var byHandoff: [String: String] = [:]
    /// Each destination's live state, by destination id.
    private(set) var live: [String: LiveState] = [:]
    /// The held reservations by expiry.
    private var expiries = ExpiryQueue()

    /// The open reservation of `handoffID`, if any.
    func reservation(ofHandoff handoffID: String) -> Reservation? {
        self.byHandoff[handoffID].flatMap { self.open[$0] }
    }

    /// Adds an open reservation; a held one joins the expiry queue.
    mutating func insert(_ reservation: Reservation) {
        precondition(self.open[reservation.id] == nil, "reservation \(reservation.id) is open already")
        self.open[reservation.id] = reservation
        self.byHandoff[reservation.handoff.handoffID] = reservation.id
        self.count(reservation, sign: 1)
        if reservation.state == .held {
            self.expiries.insert(reservation.id, expiringAt: reservation.expiresAt)
        }
    }

    /// Takes reservation `id` out of the table, if it is open.
    @discardableResult
    mutating func remove(_ id: String) -> Reservation? {
        guard let reservation = self.open.removeValue(forKey: id) else {
            return nil
        }
        if self.byHandoff[reservation.handoff.handoffID] == id {
            self.byHandoff[reservation.handoff.handoffID] = nil
        }
        self.count(reservation, sign: -1)
        return reservation
    }

    /// Replaces the open reservation of the same id with `reservation` (a new state, a pending write).
    mutating func replace(_ reservation: Reservation) {
        guard let old = self.open[reservation.id] else {
            preconditionFailure("reservation \(reservation.id) is not open")
        }
        self.count(old, sign: -1)
        self.open[reservation.id] = reservation
        self.count(reservation, sign: 1)
    }

    /// Sets reservation `id`'s fields that do not count (its attempt, its pending write), if it is open.
    mutating func update(_ id: String, _ change: (inout Reservation) -> Void) {
        guard var reservation = self.open[id] else {
            return
        }
        let state = reservation.state
        change(&reservation)
        precondition(reservation.state == state, "update(_:_:) changed a state; replace(_:) counts it")
        self.open[id] = reservation
    }

    /// The ids of held reservations due to expire at `now` (some may have been accepted or closed since).
    mutating func due(at now: Date) -> [String] {
        self.expiries.takeDue(at: now)
    }

    /// Records `availability` for `destinationID`, unless a newer report is kept already.
    mutating func report(_ availability: Availability, for destinationID: String) {
        if let previous = self.live[destinationID]?.availability, previous.at > availability.at {
            return
        }
        self.live[destinationID, default: LiveState()].availability = availability
    }

    /// Records that a handoff routed to `destinationID` while an agent was free heard hello `seconds` later.
    mutating func observe(ringAndGreet seconds: Double, at destinationID: String) {
        self.live[destinationID, default: LiveState()].ringAndGreet.observe(seconds)
    }

    private mutating func count(_ reservation: Reservation, sign: Int) {
        switch reservation.state {
        case .held:
            self.live[reservation.destinationID, default: LiveState()].held += sign
        case .accepted:
            let at = reservation.acceptedAt ?? .distantPast
            if sign > 0 {
                self.live[reservation.destinationID, default: LiveState()].accepted.append(at)
            } else if let index = self.live[reservation.destinationID]?.accepted.firstIndex(of: at) {
                self.live[reservation.destinationID]?.accepted.remove(at: index)
            }
        default:
            preconditionFailure("an open reservation is held or accepted, not \(reservation.state)")
        }
    }
}
