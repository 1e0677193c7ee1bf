package import BatonProto
import BatonRPC
package import BatonRuntime
import BatonStore
package import Foundation
import GRDB
package import Logging
import SwiftProtobuf
import Synchronization

/// The router's state: the configuration, the ledger of open reservations and live state, and the kept decisions,
/// in memory under one lock; every decision and reservation change is also written to the store before it is
/// answered.
///
/// One rule for every change (Route, Decline, Accept, Release, expiry): **apply it in memory, write it, and undo it
/// in memory if the write fails.** Applying first is what lets concurrent handoffs see each other's reservations
/// and spread out. While the write is in flight the changed reservation carries its ``Commit``; a call that would
/// answer from that state (a repeated Route, an Accept or Release of the same reservation) waits for the commit and
/// answers what it decided, so that nothing is answered before it is durable. A failed write is answered
/// `UNAVAILABLE` (nothing was kept), by the one mapping in ``stored(_:_:)``.
package final class RouterCore: Sendable {
    struct State {
        var configuration: RoutingConfiguration
        var source: String
        var problems: [ConfigProblem] = []
        /// While the file does not validate: the copy of its last valid version, which serves instead.
        var lastValidCopy: String?
        var fingerprint: FileFingerprint?
        var ledger = Ledger()
        /// Reservations taken out of the ledger by a Release, Decline or expiry whose write is in flight, with
        /// that write: kept so that a concurrent call on the same id waits for the outcome.
        var closing: [String: (reservation: Reservation, commit: Commit)] = [:]
        /// What is kept per handoff shape (category and skills), for this configuration.
        var shapes: [ShapeKey: Shape] = [:]
        /// The random bits of reservation ids, which must be unique, not secret: ListDestinations shows them.
        var random = SplitMix64()
    }

    let store: Store
    let file: String
    let copies: LastValidCopies?
    let logger: Logger
    let now: @Sendable () -> Date
    let state: Mutex<State>

    /// Loads `file` and the open reservations stored in `database`. A `file` that does not validate is served
    /// from its last valid version in `copies`; with none, the router cannot start.
    package init(
        file: String,
        database: String,
        copies: LastValidCopies? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.file = file
        self.copies = copies
        self.logger = logger
        self.now = now
        let (configuration, problems, copy) = try Self.initial(file, copies: copies, logger: logger)
        self.store = try Store(path: database, migrator: RouterStore.migrator)
        var state = State(
            configuration: configuration.configuration,
            source: file,
            problems: problems,
            lastValidCopy: copy,
            fingerprint: configuration.fingerprint
        )
        let open = try self.store.pool.read { db in try RouterStore.openReservations(in: db) }
        for reservation in open {
            state.ledger.insert(reservation)
        }
        self.state = Mutex(state)
        logger.info(
            "router: destinations loaded, open reservations restored",
            metadata: [
                "baton.destinations": "\(configuration.configuration.destinations.count)", "baton.file": "\(file)",
                "baton.open_reservations": "\(open.count)",
            ]
        )
    }

    // MARK: - Routing

    /// Routes a handoff: the decision is made and its capacity reserved in memory, then both are written; the
    /// handoff's open reservation, if it has one, is answered again instead (once its write is durable).
    package func route(_ request: Baton_Routing_V1_RouteRequest) async throws -> Decided {
        let handoff = Self.handoff(request)
        let now = self.now()
        enum Next {
            /// The handoff holds an open reservation, whose decision is answered again once durable.
            case repeated(Reservation)
            case decided(Made, Commit)
        }
        let next = self.state.withLock { state -> Next in
            if let open = state.ledger.reservation(ofHandoff: handoff.handoffID) {
                return .repeated(open)
            }
            let commit = Commit()
            var made = Self.decide(handoff, excluded: [], in: &state, now: now)
            if var reservation = made.reservation {
                reservation.pending = commit
                state.ledger.insert(reservation)
                made.reservation = reservation
            }
            return .decided(made, commit)
        }
        switch next {
        case .repeated(let open):
            return try await self.answer(open)
        case .decided(let made, let commit):
            return try await self.commit(made, commit, request: request, ending: nil) { state, succeeded in
                if !succeeded, let reservation = made.reservation {
                    state.ledger.remove(reservation.id)
                }
            }
        }
    }

    /// A repeated Route's answer: the decision that made `open`, once the write that stored it is durable.
    private func answer(_ open: Reservation) async throws -> Decided {
        guard let pending = open.pending else {
            return try Decided(open)
        }
        var durable = open
        durable.attempt = try await pending.outcome()
        return try Decided(durable)
    }

    /// Writes a decision made in memory (and its reservation, and the end of the reservation it replaces), then
    /// finishes `commit` with its outcome. On success the reservation's attempt is set and its pending write
    /// cleared; `settle` runs under the lock before anyone waiting hears the outcome, told whether the write
    /// succeeded, and undoes the decision in memory when it did not.
    ///
    /// The reply is encoded once, here, on the caller's thread, without its reasons and attempt: that serves both the
    /// store and the answer, to which ``Reasons/encoded`` and the attempt (known only inside the write) are
    /// appended.
    func commit(
        _ made: Made,
        _ commit: Commit,
        request: Baton_Routing_V1_RouteRequest,
        ending: (reservation: Reservation, at: Date, detail: String)?,
        settle: (inout State, _ succeeded: Bool) -> Void
    ) async throws -> Decided {
        let reply = made.reply
        let reasons = made.reasons
        let reservation = made.reservation
        let attempt: UInt32
        let head: [UInt8]
        do {
            let requestBytes: [UInt8] = reservation == nil ? [] : try request.serializedBytes()
            head = try reply.serializedBytes()
            attempt = try await self.stored("the decision for handoff \(reply.handoffID)") { [head] db in
                if let ending {
                    try RouterStore.update(ending.reservation, endedAt: ending.at, detail: ending.detail, in: db)
                }
                return try RouterStore.insertDecision(
                    head,
                    of: reply,
                    reasons: reasons,
                    reservation: reservation.map { ($0, requestBytes) },
                    in: db
                )
            }
        } catch {
            let failure = (error as? RPCError) ?? RPCError(code: .internal, message: "internal error")
            self.state.withLock { settle(&$0, false) }
            commit.finish(.failure(failure))
            throw failure
        }
        self.state.withLock { state in
            if let reservation {
                state.ledger.update(reservation.id) {
                    $0.attempt = attempt
                    $0.pending = nil
                }
            }
            settle(&state, true)
        }
        commit.finish(.success(attempt))
        return Decided(
            head: reply,
            reasons: reasons.messages,
            attempt: attempt,
            encoded: RouterStore.appendingAttempt(attempt, to: head + reasons.encoded)
        )
    }

    /// Runs a write in the store's next group commit. The one place where store errors become a status: a write
    /// that fails was rolled back, so it is `UNAVAILABLE` (retry); the store's message is logged, never answered.
    func stored<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.store.write(body)
        } catch {
            self.logger.error(
                "router: a write failed and was undone",
                metadata: ["baton.what": "\(what)", "baton.error": "\(error)"]
            )
            throw RPCError.unavailable("the router could not store \(what); nothing was changed, retry")
        }
    }

    /// Runs a read of the store, with its errors mapped as ``stored(_:_:)`` maps a write's.
    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.store.pool.read(body)
        } catch {
            self.logger.error("router: a read failed", metadata: ["baton.what": "\(what)", "baton.error": "\(error)"])
            throw RPCError.unavailable("the router could not read \(what); retry")
        }
    }
}
