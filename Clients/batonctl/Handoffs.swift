import ArgumentParser
import BatonProto
import BatonRuntime
import Foundation
import SwiftProtobuf

/// `batonctl handoffs`: the metrics collector's list of handoffs, one line each, newest first.
struct Handoffs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The handoffs the metrics collector measured, newest first: verdict, times, repeats, reasons."
    )

    @OptionGroup var connection: Connection
    @Flag(help: "Only the failovers.") var failovers = false
    @Option(help: "Handoffs started within this window: 90s, 30m, 1h, 7d, or all.") var since = "1h"
    @Option(help: "At most this many (1 to 1000).") var limit: UInt32 = 100
    @Flag(help: "Print the reply as JSON (baton.metrics.v1.ListHandoffsReply).") var json = false

    func validate() throws {
        guard DurationText.seconds(self.since) != nil else {
            throw ValidationError(
                "--since '\(self.since)' is not a window; expected a number with s, m, h or d (30m, 1h), or all"
            )
        }
        guard (1...1000).contains(self.limit) else {
            throw ValidationError("--limit \(self.limit) is out of range; expected 1 to 1000")
        }
    }

    func run() async throws {
        let reply = try await self.connection.callMetrics(
            Baton_Metrics_V1_MetricsCollector.Method.listHandoffs,
            .with {
                $0.windowS = DurationText.seconds(self.since) ?? 3600
                $0.classification = self.failovers ? .failover : .unspecified
                $0.limit = self.limit
            }
        )
        if self.json {
            Output.line(try reply.jsonString())
            return
        }
        guard !reply.handoffs.isEmpty else {
            Output.line(
                "No \(self.failovers ? "failovers" : "handoffs") started in \(self.since == "all" ? "store" : "the last \(self.since)")."
            )
            return
        }
        Output.table(
            [
                "STARTED", "HANDOFF", "VERDICT", "WORKFLOW/GATE", "DESTINATION", "CONTEXT", "LIVE HUMAN", "REPEATS",
                "WHY",
            ],
            reply.handoffs.map { handoff in
                let attributes = handoff.attributes
                return [
                    Output.time(unixMs: handoff.startedAtUnixMs), handoff.handoffID,
                    Self.verdict(handoff.classification),
                    "\(attributes.workflow)/\(attributes.gate.isEmpty ? "-" : attributes.gate)",
                    attributes.destination.isEmpty ? "-" : attributes.destination,
                    handoff.hasTimeToContextReadyMs ? Output.seconds(handoff.timeToContextReadyMs) : "-",
                    handoff.hasTimeToLiveHumanMs ? Output.seconds(handoff.timeToLiveHumanMs) : "-",
                    "\(handoff.repeats)",
                    handoff.reasons.isEmpty
                        ? "-"
                        : handoff.reasons.map { $0.text.isEmpty ? Report.reasonName($0.reason) : $0.text }.joined(
                            separator: "; "
                        ),
                ]
            }
        )
        if reply.matched > UInt64(reply.handoffs.count) {
            Output.line("(\(reply.handoffs.count) of \(reply.matched); --limit shows more)")
        }
    }

    static func verdict(_ classification: Baton_Metrics_V1_Classification) -> String {
        switch classification {
        case .inProgress: "in progress"
        case .handoff: "handoff"
        case .failover: "FAILOVER"
        default: "unknown"
        }
    }
}
