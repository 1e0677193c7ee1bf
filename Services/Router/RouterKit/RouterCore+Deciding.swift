package import BatonProto
import Foundation
import SwiftProtobuf

/// Making a decision in memory: the kept decision of the handoff's shape while it holds, otherwise a fresh one.
extension RouterCore {
    struct ShapeKey: Hashable {
        var category: String
        var skills: [String]
    }

    struct Shape {
        /// ``RoutingConfiguration/fixedProblems(category:skills:)``.
        var fixed: [String?]
        /// The last decision for a normal and for an urgent handoff of this shape.
        var normal: KeptDecision?
        var urgent: KeptDecision?
    }

    /// Handoff shapes kept; past this many, the kept ones are dropped and kept anew.
    static let keptShapes = 4096

    /// A decision as it is answered: the reply, in the parts it is made of, and its binary protobuf encoding. The
    /// RPC answers the encoding; the reply is put together only when asked for.
    package struct Decided: Sendable {
        /// The reply without its reasons and attempt.
        var head: Baton_Routing_V1_RouteReply
        var reasons: [Baton_Routing_V1_Reason]
        var attempt: UInt32
        var encoded: [UInt8]

        package var reply: Baton_Routing_V1_RouteReply {
            var reply = self.head
            reply.reasons = self.reasons
            reply.attempt = self.attempt
            return reply
        }

        init(head: Baton_Routing_V1_RouteReply, reasons: [Baton_Routing_V1_Reason], attempt: UInt32, encoded: [UInt8]) {
            self.head = head
            self.reasons = reasons
            self.attempt = attempt
            self.encoded = encoded
        }

        /// Encodes the reply its parts make.
        init(head: Baton_Routing_V1_RouteReply, reasons: [Baton_Routing_V1_Reason], attempt: UInt32) throws {
            self.init(head: head, reasons: reasons, attempt: attempt, encoded: [])
            self.encoded = try self.reply.serializedBytes()
        }

        /// The decision that made `reservation`, with the attempt its write was stored as.
        init(_ reservation: Reservation) throws {
            try self.init(
                head: reservation.record.decision,
                reasons: reservation.record.reasons,
                attempt: reservation.attempt
            )
        }
    }

    /// A decision made in memory: the reply without its reasons, which are beside it, and when routed the
    /// reservation it makes (not in the ledger yet).
    struct Made {
        var reply: Baton_Routing_V1_RouteReply
        var reasons: Reasons
        var reservation: Reservation?
    }

    /// Decides where `handoff` goes now. The decision is the one kept for the handoff's shape while that holds (see
    /// ``KeptDecision``); otherwise it is made afresh, and kept.
    static func decide(_ handoff: Handoff, excluded: Set<String>, in state: inout State, now: Date) -> Made {
        let key = ShapeKey(category: handoff.category, skills: handoff.skills)
        if state.shapes[key] == nil {
            if state.shapes.count >= Self.keptShapes {
                state.shapes = [:]
            }
            state.shapes[key] = Shape(
                fixed: state.configuration.fixedProblems(category: handoff.category, skills: handoff.skills)
            )
        }
        let shape = state.shapes[key]!
        let live = state.ledger.live
        let configuration = state.configuration
        let decision: Decision
        let reasons: Reasons
        let kept = excluded.isEmpty ? (handoff.urgent ? shape.urgent : shape.normal) : nil
        let holds = configuration.destinations.withUnsafeBufferPointer { destinations in
            kept?.holds(at: now, destinations: destinations.count) { index in
                Prediction(
                    agents: destinations[index].agents,
                    averageHandleSeconds: destinations[index].averageHandleSeconds,
                    live: live[destinations[index].id] ?? LiveState(),
                    policy: configuration.policy,
                    now: now
                )
            } ?? false
        }
        if let kept, holds {
            (decision, reasons) = (kept.decision, kept.reasons)
        } else {
            decision = configuration.decide(
                handoff,
                live: { live[$0] ?? LiveState() },
                now: now,
                excluded: excluded,
                fixed: shape.fixed
            )
            reasons = Reasons(decision.verdicts)
            if excluded.isEmpty {
                let kept = KeptDecision(decision, reasons: reasons, at: now, destinations: configuration.destinations)
                if handoff.urgent {
                    state.shapes[key]?.urgent = kept
                } else {
                    state.shapes[key]?.normal = kept
                }
            }
        }
        var reply = Baton_Routing_V1_RouteReply()
        reply.handoffID = handoff.handoffID
        reply.callID = handoff.callID
        reply.decidedAtUnixMs = Self.milliseconds(now)
        guard let index = decision.chosen, let prediction = decision.prediction else {
            reply.outcome = .noDestination
            if let next = decision.nextOpening {
                reply.nextOpenAtUnixMs = Self.milliseconds(next.at)
                reply.nextOpenDestinationID = next.destinationID
            }
            return Made(reply: reply, reasons: reasons, reservation: nil)
        }
        let expires = now.addingTimeInterval(configuration.policy.reservationTimeoutSeconds)
        reply.outcome = .routed
        configuration.destinations.withUnsafeBufferPointer { destinations in
            reply.destinationID = destinations[index].id
            reply.kind = destinations[index].kind == .inHouse ? .inHouse : .partner
            reply.transferAddress = destinations[index].transfer
        }
        reply.predictedLiveHumanMs = prediction.milliseconds
        reply.reservationID = Self.reservationID(at: now, random: &state.random)
        reply.reservationExpiresAtUnixMs = Self.milliseconds(expires)
        let record = Reservation.Record(
            id: reply.reservationID,
            handoff: handoff,
            destinationID: reply.destinationID,
            createdAt: now,
            expiresAt: expires,
            excluded: excluded,
            decision: reply,
            reasons: reasons.messages,
            answeredAtOnce: prediction.freeAgents >= 1
        )
        return Made(
            reply: reply,
            reasons: reasons,
            reservation: Reservation(record, state: .held, attempt: 0, pending: nil)
        )
    }
}
