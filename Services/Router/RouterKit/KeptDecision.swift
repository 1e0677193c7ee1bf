import BatonProto
import Foundation
import GRDB
import SwiftProtobuf
import Synchronization

/// A decision's reasons as they are answered and stored: converted and encoded once, and stored once, however many
/// decisions share them.
final class Reasons: Sendable {
    /// One per distinct verdict, text and prediction, naming every destination that has it (router.proto).
    let messages: [Baton_Routing_V1_Reason]
    /// The messages encoded as RouteReply's `reasons` field. Appended to a RouteReply encoded without reasons, the
    /// result decodes as that reply with these reasons: protobuf parsers accept fields in any order.
    let encoded: [UInt8]
    /// Its `reason_sets` row: inserted by a write whose transaction has not ended yet (for the later writes of
    /// that transaction), or stored by one that committed.
    private let stored = Mutex<(row: Int64, committed: Bool)?>(nil)

    init(_ verdicts: [Verdict]) {
        struct Key: Hashable {
            var kind: Verdict.Kind
            var text: String
            var milliseconds: UInt32
        }
        var messages: [Baton_Routing_V1_Reason] = []
        var index: [Key: Int] = [:]
        for verdict in verdicts {
            let key = Key(kind: verdict.kind, text: verdict.text, milliseconds: verdict.prediction?.milliseconds ?? 0)
            if let shared = index[key] {
                messages[shared].destinationIds.append(verdict.destinationID)
                continue
            }
            var reason = Baton_Routing_V1_Reason()
            reason.destinationIds = [verdict.destinationID]
            reason.text = verdict.text
            reason.verdict =
                switch verdict.kind {
                case .filtered: .filtered
                case .candidate: .candidate
                case .chosen: .chosen
                }
            reason.predictedLiveHumanMs = key.milliseconds
            index[key] = messages.count
            messages.append(reason)
        }
        self.messages = messages
        var carrier = Baton_Routing_V1_RouteReply()
        carrier.reasons = self.messages
        // Encoding a message of strings and numbers cannot fail.
        self.encoded = (try? carrier.serializedBytes()) ?? []
    }

    /// The row holding these reasons, stored or inserted earlier in the current transaction; nil when the write
    /// must insert them. Only a write (on the store's committing thread) may ask.
    var row: Int64? {
        self.stored.withLock { $0?.row }
    }

    /// Records that a write inserted these reasons as row `id` in the transaction of `db`: its later writes reuse
    /// the row; it is kept if that transaction commits and forgotten if it rolls back.
    ///
    /// The row is cached across the transaction's end by GRDB's hooks, so it must be inside one: a write outside
    /// a transaction would leave a row id cached that no hook ever confirms or forgets.
    func inserted(_ id: Int64, in db: Database) {
        precondition(db.isInsideTransaction, "reasons are inserted inside the write's transaction")
        self.stored.withLock { $0 = (id, false) }
        db.afterNextTransaction(
            onCommit: { _ in self.stored.withLock { $0 = (id, true) } },
            onRollback: { _ in self.stored.withLock { if $0?.committed == false { $0 = nil } } }
        )
    }
}

/// The last decision for one handoff shape (category, skills, priority), kept so that the next handoff of that
/// shape is decided without building a single string.
///
/// A kept decision holds while, within the same UTC minute and with no declined destination, every destination
/// that passed the rules independent of load predicts the same time, with the same staleness. Those are all a
/// decision depends on: the fixed problems belong to the shape, and whether a destination is open cannot change
/// within a UTC minute, because opening hours are whole minutes and time-zone offsets (and their changes) fall on
/// whole minutes. A decision that names a next opening is not kept.
///
/// A kept decision is tied to the configuration it was made with: its verdicts, and so the destinations it
/// re-predicts, are by index into that configuration's destinations (``RoutingConfiguration/decide`` gives one
/// verdict per destination, in order). The router drops every kept decision when it loads a configuration, and
/// ``holds(at:destinations:predict:)`` checks the count it is given.
struct KeptDecision {
    private var minute: Int64
    /// How many destinations the configuration it was made with has.
    private let destinations: Int
    /// Each destination that passed the load-independent rules, with its prediction's seconds and staleness.
    private var considered: [(index: Int, seconds: Double, stale: Bool)]
    let decision: Decision
    let reasons: Reasons

    init?(_ decision: Decision, reasons: Reasons, at now: Date, destinations: [Destination]) {
        precondition(decision.verdicts.count == destinations.count, "one verdict per destination, by index")
        assert(zip(decision.verdicts, destinations).allSatisfy { $0.destinationID == $1.id }, "verdicts in order")
        guard decision.nextOpening == nil else {
            return nil
        }
        self.destinations = destinations.count
        self.minute = Self.minute(now)
        self.considered = decision.verdicts.indices.compactMap { index in
            decision.verdicts[index].prediction.map { (index, $0.seconds, $0.stale) }
        }
        self.decision = decision
        self.reasons = reasons
    }

    /// Whether the decision made now would be this one; `predict` gives the prediction now of the destination at
    /// an index of the configuration's `destinations`, which must be the one the decision was made with.
    func holds(at now: Date, destinations: Int, predict: (Int) -> Prediction) -> Bool {
        precondition(destinations == self.destinations, "a kept decision outlived its configuration")
        guard Self.minute(now) == self.minute else {
            return false
        }
        for kept in self.considered {
            let prediction = predict(kept.index)
            if prediction.seconds != kept.seconds || prediction.stale != kept.stale {
                return false
            }
        }
        return true
    }

    private static func minute(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / 60).rounded(.down))
    }
}
