import ArgumentParser
import BatonProto
import RouterKit
import SwiftProtobuf

/// `batonctl explain`: the router's decisions for one handoff and what became of each reservation, for a person.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Why a handoff went where it went: the router's decisions, each destination's reason, the reservations."
    )

    @OptionGroup var connection: Connection
    @Argument(help: "The handoff id (the context-assembler's, e.g. c-1-h1).") var handoff: String
    @Flag(help: "Print the reply as JSON (baton.routing.v1.ExplainReply).") var json = false

    func run() async throws {
        let reply = try await self.connection.call(
            "router",
            Baton_Routing_V1_Router.Method.explain,
            .with { $0.handoffID = self.handoff }
        )
        if self.json {
            Output.line(try reply.jsonString())
            return
        }
        for decision in reply.decisions {
            let routed =
                decision.outcome == .routed
                ? "to \(decision.destinationID), predicted \(Output.seconds(decision.predictedLiveHumanMs)) to a live human"
                : "no destination"
                    + (decision.nextOpenDestinationID.isEmpty
                        ? ""
                        : "; \(decision.nextOpenDestinationID) opens at \(Output.time(unixMs: decision.nextOpenAtUnixMs))")
            Output.line("Attempt \(decision.attempt) at \(Output.time(unixMs: decision.decidedAtUnixMs)): \(routed)")
            for reason in decision.reasons {
                Output.line(
                    "  \(Self.verdict(reason.verdict))  \(reason.destinationIds.joined(separator: ", ")): \(reason.text)"
                )
            }
        }
        if !reply.reservations.isEmpty {
            Output.line("Reservations:")
            Output.table(
                ["  ID", "DESTINATION", "STATE", "CREATED", "DETAIL"],
                reply.reservations.map { reservation in
                    [
                        "  " + reservation.id, reservation.destinationID, RouterCore.name(reservation.state),
                        Output.time(unixMs: reservation.createdAtUnixMs),
                        reservation.detail.isEmpty ? "-" : reservation.detail,
                    ]
                }
            )
        }
    }

    static func verdict(_ verdict: Baton_Routing_V1_Reason.Verdict) -> String {
        switch verdict {
        case .chosen: "chosen   "
        case .candidate: "candidate"
        case .filtered: "filtered "
        default: "?        "
        }
    }
}
