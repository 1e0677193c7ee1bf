import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Foundation
import SwiftProtobuf
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The metrics collector process over its socket: bad input that stores nothing, events and figures that survive
/// a kill -9, and batonctl report and metrics.
@Suite("Metrics collector process")
struct MetricsCollectorProcessTests {
    /// Runs `body` with a metrics collector, stopped and removed however `body` ends.
    static func with(_ body: (inout RunningService) async throws -> Void) async throws {
        try await RunningService.with("metrics-collector", body)
    }

    /// A handoff's events, the gate fired `ago` ms before now and the human greeting `greeted` ms after it.
    static func handoff(_ id: String, greeted: Int64, ago: Int64 = 60_000) -> [Baton_Metrics_V1_Event] {
        let start = Int64(Date().timeIntervalSince1970 * 1000) - ago
        let steps: [(Baton_Metrics_V1_EventKind, Int64)] = [
            (.gateFired, 0), (.briefDisplayed, 1_100), (.humanConnected, 2_000), (.humanGreeted, greeted),
        ]
        return steps.enumerated().map { index, step in
            var event = Baton_Metrics_V1_Event()
            event.eventID = "\(id)-\(index)"
            event.handoffID = id
            event.callID = "call-\(id)"
            event.kind = step.0
            event.atUnixMs = start + step.1
            if step.0 == .gateFired {
                event.workflow = "billing"
                event.gate = "payment"
                event.origin = .designed
            }
            if step.0 == .humanGreeted {
                event.destination = id.hasPrefix("p") ? "northwind-bpo" : "billing-in-house"
            }
            return event
        }
    }

    @Test("a SIGTERM restart under steady traffic: the old process drains and exits 0, no call fails, none runs twice")
    func restartUnderSteadyTraffic() async throws {
        try await RunningService.with("metrics-collector") { running in
            let client = RPCClient(socketPath: running.socket)
            let metrics = Baton_Metrics_V1_MetricsCollector.Client(client)
            let writers = 16
            let perWriter = 50
            let sent = Counter()
            // Each writer records its own handoffs' gate_fired, one call per event, waiting for the server while
            // it restarts; a call that ran twice would come back as a duplicate.
            let traffic = Task {
                try await withThrowingTaskGroup(of: (recorded: Int, duplicates: Int).self) { group in
                    for writer in 0..<writers {
                        group.addTask {
                            var totals = (recorded: 0, duplicates: 0)
                            for index in 0..<perWriter {
                                var request = Baton_Metrics_V1_RecordRequest()
                                request.event = Self.handoff("w\(writer)-\(index)", greeted: 4_000)[0]
                                let reply = try await metrics.record(
                                    request,
                                    options: CallOptions(timeout: .seconds(30), waitForReady: true)
                                )
                                totals.recorded += Int(reply.recorded)
                                totals.duplicates += Int(reply.duplicates)
                                sent.increment()
                            }
                            return totals
                        }
                    }
                    return try await group.reduce(into: (recorded: 0, duplicates: 0)) {
                        $0.recorded += $1.recorded
                        $0.duplicates += $1.duplicates
                    }
                }
            }
            #expect(await eventually { sent.value >= writers * perWriter / 4 }, "traffic is flowing before the restart")
            let status = try await running.restart(after: SIGTERM)
            #expect(status == 0, "the old process drained and exited 0")
            let totals = try await traffic.value
            #expect(totals.recorded == writers * perWriter && totals.duplicates == 0)
            var list = Baton_Metrics_V1_ListHandoffsRequest()
            list.limit = 1000
            let handoffs = try await metrics.listHandoffs(list, options: CallOptions(timeout: .seconds(10)))
            #expect(handoffs.handoffs.count == writers * perWriter)
            await client.close()
        }
    }

    @Test("events and figures survive kill -9 and a restart; a retried batch is acknowledged, not counted again")
    func killAndRestart() async throws {
        try await Self.with { running in
            do {
                var batch = Baton_Metrics_V1_RecordBatchRequest()
                batch.events = Self.handoff("h-1", greeted: 4_800) + Self.handoff("p-2", greeted: 11_000)
                let recorded = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.recordBatch, batch)
                #expect(recorded.recorded == 8 && recorded.duplicates == 0)
                var summary = Baton_Metrics_V1_SummaryRequest()
                summary.groupBy = [.destination]
                let before = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.summary, summary)
                #expect(before.overall.handoffs == 1 && before.overall.failovers == 1)

                try await running.killAndRestart()

                let after = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.summary, summary)
                #expect(after.overall == before.overall && after.groups == before.groups)
                let again = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.recordBatch, batch)
                #expect(again.recorded == 0 && again.duplicates == 8)
                var get = Baton_Metrics_V1_GetHandoffRequest()
                get.handoffID = "p-2"
                let handoff = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.getHandoff, get)
                #expect(handoff.classification == .failover && handoff.timeToLiveHumanMs == 11_000)
                #expect(handoff.reasons.map(\.text) == ["greeted after 11 s (over 8 s)"])
                #expect(handoff.timeline.map(\.kind) == [.gateFired, .briefDisplayed, .humanConnected, .humanGreeted])
            } catch {
                Issue.record("\(error)\n\(running.process.output)")
            }
        }
    }

    @Test("an invalid event is INVALID_ARGUMENT naming it, and nothing of its batch is stored")
    func badInput() async throws {
        try await Self.with { running in
            var batch = Baton_Metrics_V1_RecordBatchRequest()
            batch.events = Self.handoff("h-1", greeted: 4_000)
            batch.events[2].kind = .unspecified
            let invalid = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Metrics_V1_MetricsCollector.Method.recordBatch, batch)
            }
            #expect(invalid?.code == .invalidArgument)
            #expect(invalid?.message.hasPrefix("events[2].kind is 0; expected") == true)
            var get = Baton_Metrics_V1_GetHandoffRequest()
            get.handoffID = "h-1"
            let missing = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Metrics_V1_MetricsCollector.Method.getHandoff, get)
            }
            #expect(missing?.code == .notFound)

            var single = Baton_Metrics_V1_RecordRequest()
            single.event = Self.handoff("h-2", greeted: 4_000)[0]
            single.event.destinationKind = "bpo"
            let kind = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Metrics_V1_MetricsCollector.Method.record, single)
            }
            #expect(kind?.message.hasPrefix("event.destination_kind is 'bpo'; expected in_house or partner") == true)
            var summary = Baton_Metrics_V1_SummaryRequest()
            summary.groupBy = [.unspecified]
            let group = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Metrics_V1_MetricsCollector.Method.summary, summary)
            }
            #expect(group?.code == .invalidArgument && group?.message.hasPrefix("group_by[0] is 0") == true)
        }
    }

    @Test("batonctl report draws the summary and the histogram; batonctl metrics prints the Prometheus text")
    func batonctl() async throws {
        try await Self.with { running in
            var batch = Baton_Metrics_V1_RecordBatchRequest()
            batch.events =
                Self.handoff("h-1", greeted: 4_800) + Self.handoff("p-2", greeted: 11_000)
                + Self.handoff("old", greeted: 3_000, ago: 7_200_000)
            _ = try await running.call(Baton_Metrics_V1_MetricsCollector.Method.recordBatch, batch)

            let report = try await running.batonctl(["report", "--window", "1h", "--by", "destination"])
            #expect(report.status == 0, "\(report.output)")
            #expect(report.output.contains("Handoffs started in the last 1h: 2"))
            let lines = report.output.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("billing-in-house") && $0.contains(" 1 (100%) ") })
            #expect(
                lines.contains { $0.hasPrefix("  > 4-6 s") && $0.contains(" 1 #") && $0.hasSuffix("target window") }
            )
            #expect(lines.contains { $0.hasPrefix("    8-20 s") && $0.contains(" 1 #") })
            #expect(lines.contains { $0.hasPrefix("  greeted late") })

            let all = try await running.batonctl(["report", "--window", "all", "--json"])
            #expect(all.status == 0 && all.output.contains(#""handoffsTotal":"3""#), "\(all.output)")
            let bad = try await running.batonctl(["report", "--by", "colour"])
            #expect(bad.status == 2 && bad.output.contains("--by 'colour' is not a grouping"))

            let metrics = try await running.batonctl(["metrics"])
            #expect(metrics.status == 0)
            #expect(metrics.output.contains("baton_handoff_time_to_live_human_seconds_bucket{le=\"+Inf\"} 3\n"))
            #expect(metrics.output.contains("baton_handoffs_total{classification=\"failover\"} 1\n"))
        }
    }
}
