import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import SwiftProtobuf

extension Connection {
    /// Calls a method of the metrics collector; a failed call is reported in one line and exits 1.
    func callMetrics<Request: Message, Reply: Message>(
        _ method: UnaryMethod<Request, Reply>,
        _ request: Request
    ) async throws -> Reply {
        try await self.call("metrics-collector", method, request)
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "How the handoffs went: handoffs against failovers, time-to-context-ready, time-to-live-human.",
        discussion: """
            Reads the metrics collector's Summary. The window is a number with s, m, h or d (90s, 30m, 1h, 7d), \
            or all. --by groups the figures by workflow, gate, category, destination or destination_kind; \
            give it more than once, or comma-separated, to group by several.
            """
    )

    @OptionGroup var connection: Connection
    @Option(help: "Handoffs started within this window: 90s, 30m, 1h, 7d, or all.") var window = "1h"
    @Option(help: "Group by workflow, gate, category, destination or destination_kind.") var by: [String] = []
    @Flag(help: "Print the summary as JSON (baton.metrics.v1.SummaryReply).") var json = false

    static let groups: [String: Baton_Metrics_V1_GroupBy] = [
        "workflow": .workflow, "gate": .gate, "category": .category, "destination": .destination,
        "destination_kind": .destinationKind, "destination-kind": .destinationKind,
    ]

    func run() async throws {
        guard let windowS = DurationText.seconds(self.window) else {
            Output.error(
                "--window '\(self.window)' is not a window; expected a number with s, m, h or d (30m, 1h), or all"
            )
            throw ExitCode(2)
        }
        var request = Baton_Metrics_V1_SummaryRequest()
        request.windowS = windowS
        let groupings = self.by.flatMap { $0.split(separator: ",").map(String.init) }
        for name in groupings {
            guard let group = Self.groups[name] else {
                Output.error(
                    "--by '\(name)' is not a grouping; expected workflow, gate, category, destination or destination_kind"
                )
                throw ExitCode(2)
            }
            request.groupBy.append(group)
        }
        let reply = try await self.connection.callMetrics(Baton_Metrics_V1_MetricsCollector.Method.summary, request)
        if self.json {
            Output.line(try reply.jsonString())
            return
        }
        Output.line(
            "Handoffs \(windowS == 0 ? "stored" : "started in the last \(self.window)"): "
                + "\(reply.overall.handoffsTotal)"
        )
        Output.line("")
        let keyNames = groupings.map { $0.uppercased() }
        var rows = [["all"] + Array(repeating: "", count: max(0, keyNames.count - 1)) + Self.columns(reply.overall)]
        for group in reply.groups {
            rows.append(group.key.map { $0.isEmpty ? "-" : $0 } + Self.columns(group.figures))
        }
        Output.table(
            (keyNames.isEmpty ? [""] : keyNames)
                + [
                    "TOTAL", "HANDOFFS", "FAILOVERS", "IN PROGRESS", "CONTEXT READY p50/p90/p99",
                    "LIVE HUMAN p50/p90/p99/max", "REPEATS/HANDOFF",
                ],
            rows
        )
        Output.line("")
        Self.histogram(reply.overall.buckets).forEach(Output.line)
        let reasons = reply.overall.topFailoverReasons
        if !reasons.isEmpty {
            Output.line("")
            Output.line("Failover reasons (a failover counts under each that applies):")
            let width = reasons.map { Self.reasonName($0.reason).count }.max() ?? 0
            for reason in reasons {
                let name = Self.reasonName(reason.reason)
                Output.line("  " + name + String(repeating: " ", count: width - name.count) + "  \(reason.count)")
            }
        }
    }

    static func columns(_ figures: Baton_Metrics_V1_Figures) -> [String] {
        let share =
            figures.handoffsTotal == 0 ? "" : " (\(figures.handoffs * 100 / figures.handoffsTotal)%)"
        let ready = figures.timeToContextReady
        let live = figures.timeToLiveHuman
        return [
            "\(figures.handoffsTotal)",
            "\(figures.handoffs)\(share)",
            "\(figures.failovers)",
            "\(figures.inProgress)",
            ready.count == 0 ? "-" : Self.seconds([ready.p50Ms, ready.p90Ms, ready.p99Ms]),
            live.count == 0 ? "-" : Self.seconds([live.p50Ms, live.p90Ms, live.p99Ms, live.maxMs]),
            String(format: "%.2f", figures.repeatsPerHandoff),
        ]
    }

    /// "1.2/3.4/5.0 s".
    static func seconds(_ milliseconds: [UInt32]) -> String {
        milliseconds.map { String(format: "%.1f", Double($0) / 1000) }.joined(separator: "/") + " s"
    }

    /// The time-to-live-human distribution as bars, the target window marked.
    static func histogram(_ buckets: Baton_Metrics_V1_BucketCounts) -> [String] {
        let rows: [(String, UInt64, String)] = [
            ("under 4 s", buckets.under4S, ""),
            ("4-6 s", buckets.from4To6S, "  <- target window"),
            ("6-8 s", buckets.from6To8S, ""),
            ("8-20 s", buckets.from8To20S, "  noticed"),
            ("over 20 s", buckets.over20S, "  lost"),
            ("not greeted", buckets.notGreeted, ""),
        ]
        let most = rows.map(\.1).max() ?? 0
        let counts = rows.map { "\($0.1)" }
        let countWidth = counts.map(\.count).max() ?? 0
        return ["Time to live human:"]
            + zip(rows, counts).map { row, count in
                let (label, value, note) = row
                let bar = most == 0 ? 0 : Int((Double(value) / Double(most) * 40).rounded(.up))
                let marker = label == "4-6 s" ? ">" : " "
                let line =
                    "  \(marker) " + label.padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                    + String(repeating: " ", count: countWidth - count.count) + count + " "
                    + String(repeating: "#", count: bar) + note
                return String(line.reversed().drop { $0 == " " }.reversed())
            }
    }

    static func reasonName(_ reason: Baton_Metrics_V1_FailoverReason) -> String {
        switch reason {
        case .undesigned: "undesigned escalation"
        case .noBriefBeforeConnect: "no brief before connect"
        case .greetedLate: "greeted late"
        case .repeated: "caller repeated facts"
        case .transferFailed: "transfer failed"
        case .abandoned: "abandoned"
        default: "\(reason)"
        }
    }
}

struct Metrics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The handoff figures in Prometheus' text exposition format, from the metrics collector's Export."
    )

    @OptionGroup var connection: Connection

    func run() async throws {
        let reply = try await self.connection.callMetrics(
            Baton_Metrics_V1_MetricsCollector.Method.export,
            Baton_Metrics_V1_ExportRequest()
        )
        Output.line(reply.text.hasSuffix("\n") ? String(reply.text.dropLast()) : reply.text)
    }
}
