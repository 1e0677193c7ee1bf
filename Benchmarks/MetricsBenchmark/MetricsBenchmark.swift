import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import MetricsCollectorKit

#if canImport(Glibc)
import Glibc
#endif

/// `metrics-collector benchmark`: durable events recorded per second over the socket, batched (100 per call)
/// and one per call, with Health/Check over the same socket as the baseline; then Summary over the million-odd
/// events stored by then, beside a ListHandoffs of one handoff as its baseline.
@main
struct MetricsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-benchmark",
        abstract:
            "Measure events recorded per second, Summary's time, and a restart's time to serving and to the first "
            + "Summary with 1 and 10 million events stored; run by hand, not by the tests."
    )

    @Option(help: "Events to record in batches (100 per call) over the socket.") var batched = 1_000_000
    @Option(help: "Events to record one per call over the socket.") var unbatched = 100_000
    @Option(help: "Calls in flight.") var inFlight = 64
    @Option(help: "Summary calls to time.") var summaries = 20
    @Option(help: "Events stored for the second restart (0 skips it).") var large = 10_000_000

    func run() async throws {
        let directory = "/tmp/baton-metrics-bench-\(getpid())"
        defer { _ = system("rm -rf '\(directory)'") }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let arguments = [
            "--run-dir", directory + "/run", "--data-dir", directory + "/data", "--log-level", "error",
            "--retention", "all",
        ]
        var pid = try Benchmarking.spawnSibling("metrics-collector", arguments)
        defer { Benchmarking.stop(pid) }
        let client = RPCClient(socketPath: directory + "/run/metrics-collector.sock", logger: logger)
        try await Benchmarking.waitUntilServing(client)
        let now = Int64(Date().timeIntervalSince1970 * 1000)

        let batches = self.batched / 100
        let batched = try await Benchmarking.rate(calls: batches, inFlight: self.inFlight, client: client) { index in
            var request = Baton_Metrics_V1_RecordBatchRequest()
            request.events = (0..<100).map { Self.event(index * 100 + $0, prefix: "b", now: now) }
            let reply = try await client.unary(
                Baton_Metrics_V1_MetricsCollector.Method.recordBatch,
                request,
            )
            precondition(reply.recorded == 100, "a batch recorded \(reply.recorded) of 100 events")
        }
        print(
            "RecordBatch (100 events per call), \(self.inFlight) in flight: \(Int(batched.perSecond * 100)) durable events/s, "
                + "p50 \(batched.p50Microseconds) µs, p99 \(batched.p99Microseconds) µs per call"
        )
        let single = try await Benchmarking.rate(calls: self.unbatched, inFlight: self.inFlight, client: client) {
            index in
            var request = Baton_Metrics_V1_RecordRequest()
            request.event = Self.event(index, prefix: "u", now: now)
            _ = try await client.unary(
                Baton_Metrics_V1_MetricsCollector.Method.record,
                request,
            )
        }
        print(
            "Record (1 event per call), \(self.inFlight) in flight: \(Int(single.perSecond)) durable events/s, "
                + "p50 \(single.p50Microseconds) µs, p99 \(single.p99Microseconds) µs"
        )
        let health = try await Benchmarking.rate(calls: self.unbatched, inFlight: self.inFlight, client: client) { _ in
            _ = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
            )
        }
        print(
            "baseline, same socket and run: Health/Check \(Int(health.perSecond)) calls/s, "
                + "p50 \(health.p50Microseconds) µs, p99 \(health.p99Microseconds) µs"
        )

        var summary = Baton_Metrics_V1_SummaryRequest()
        summary.groupBy = [.destination, .category]
        var overall = Baton_Metrics_V1_Figures()
        let summaryTimes = try await self.time(self.summaries) {
            overall = try await client.unary(
                Baton_Metrics_V1_MetricsCollector.Method.summary,
                summary,
                options: CallOptions(timeout: .seconds(60))
            ).overall
        }
        var list = Baton_Metrics_V1_ListHandoffsRequest()
        list.limit = 1
        let listTimes = try await self.time(self.summaries) {
            _ = try await client.unary(
                Baton_Metrics_V1_MetricsCollector.Method.listHandoffs,
                list,
                options: CallOptions(timeout: .seconds(60))
            )
        }
        await client.close()
        let events = self.batched + self.unbatched
        print(
            "Summary by destination and category over \(events) events (\(overall.handoffsTotal) handoffs): "
                + "median \(summaryTimes.median) ms, max \(summaryTimes.max) ms"
        )
        print(
            "baseline, the same scan without figures: ListHandoffs (limit 1) median \(listTimes.median) ms, "
                + "max \(listTimes.max) ms"
        )

        try await self.restart(&pid, arguments: arguments, socket: client.socketPath, stored: events, now: now)
        if self.large > events {
            let more = RPCClient(socketPath: client.socketPath, logger: logger)
            let batches = (self.large - events) / 100
            _ = try await Benchmarking.rate(calls: batches, inFlight: self.inFlight, client: more) { index in
                var request = Baton_Metrics_V1_RecordBatchRequest()
                // A month of history: most of it older than the hour a first report asks for.
                request.events = (0..<100).map {
                    Self.event(index * 100 + $0, prefix: "l", now: now, spreadMs: 30 * 86_400_000)
                }
                _ = try await more.unary(Baton_Metrics_V1_MetricsCollector.Method.recordBatch, request)
            }
            await more.close()
            let stored = events + batches * 100
            try await self.restart(&pid, arguments: arguments, socket: client.socketPath, stored: stored, now: now)
        }
    }

    /// Stops the collector with SIGTERM, starts it again, and prints how long it took to answer Health SERVING, a
    /// Record, and a Summary (which waits for the stored history to be in memory).
    private func restart(
        _ pid: inout Int32,
        arguments: [String],
        socket: String,
        stored: Int,
        now: Int64
    ) async throws {
        Benchmarking.stop(pid)
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let clock = ContinuousClock()
        let started = clock.now
        pid = try Benchmarking.spawnSibling("metrics-collector", arguments)
        let client = RPCClient(socketPath: socket, logger: logger)
        try await Benchmarking.waitUntilServing(client)
        let serving = clock.now - started
        var record = Baton_Metrics_V1_RecordRequest()
        record.event = Self.event(0, prefix: "restart-\(stored)", now: now)
        _ = try await client.unary(
            Baton_Metrics_V1_MetricsCollector.Method.record,
            record,
            options: CallOptions(timeout: .seconds(60))
        )
        let recorded = clock.now - started
        // What `batonctl report` asks first: the last hour.
        var hour = Baton_Metrics_V1_SummaryRequest()
        hour.windowS = 3_600
        let recent = try await client.unary(
            Baton_Metrics_V1_MetricsCollector.Method.summary,
            hour,
            options: CallOptions(timeout: .seconds(300))
        )
        let summarisedHour = clock.now - started
        let summary = try await client.unary(
            Baton_Metrics_V1_MetricsCollector.Method.summary,
            Baton_Metrics_V1_SummaryRequest(),
            options: CallOptions(timeout: .seconds(300))
        )
        let summarised = clock.now - started
        await client.close()
        let ms = { (duration: Duration) in Int(Benchmarking.seconds(duration) * 1000) }
        print(
            "restart with \(stored) events stored (\(summary.overall.handoffsTotal) handoffs): SERVING after "
                + "\(ms(serving)) ms, first Record answered after \(ms(recorded)) ms, first Summary of the last hour "
                + "(\(recent.overall.handoffsTotal) handoffs) after \(ms(summarisedHour)) ms, first Summary of all "
                + "after \(ms(summarised)) ms"
        )
    }

    /// Runs `call` `count` times, one after another; the median and the slowest, in ms.
    private func time(_ count: Int, _ call: () async throws -> Void) async throws -> (median: Int, max: Int) {
        let clock = ContinuousClock()
        var times: [Int] = []
        for _ in 0..<count {
            let started = clock.now
            try await call()
            times.append(Int(Benchmarking.seconds(clock.now - started) * 1000))
        }
        times.sort()
        return (times[times.count / 2], times.last ?? 0)
    }

    static let kinds: [Baton_Metrics_V1_EventKind] = [
        .gateFired, .briefReady, .routed, .briefDelivered, .briefDisplayed, .transferStarted, .humanConnected,
        .humanGreeted, .callerRepeated, .callEnded,
    ]

    /// Event `index`: ten per handoff, a realistic timeline with times spread over the last `spreadMs` (an hour).
    static func event(
        _ index: Int,
        prefix: String,
        now: Int64,
        spreadMs: Int64 = 3_600_000
    ) -> Baton_Metrics_V1_Event {
        let handoff = index / 10
        let step = index % 10
        var event = Baton_Metrics_V1_Event()
        event.eventID = "\(prefix)-\(handoff)-\(step)"
        event.handoffID = "\(prefix)-handoff-\(handoff)"
        event.callID = "\(prefix)-call-\(handoff)"
        // One handoff in five has the caller repeat a fact; the others have a second brief_delivered there.
        event.kind = step == 8 && handoff % 5 != 0 ? .briefDelivered : Self.kinds[step]
        let start = now - Int64(handoff) * 7919 % spreadMs
        event.atUnixMs = start + Int64(step) * Int64(300 + handoff % 900)
        if step == 0 {
            event.workflow = ["billing", "care", "claims"][handoff % 3]
            event.gate = ["payment", "grief", "judgement", "legal"][handoff % 4]
            event.category = event.gate
            event.origin = handoff % 17 == 0 ? .undesigned : .designed
        }
        if step == 2 {
            event.destination = "destination-\(handoff % 50)"
            event.destinationKind = handoff % 3 == 0 ? "partner" : "in_house"
        }
        if event.kind == .callerRepeated {
            event.repeatedSlot = "account_number"
        }
        return event
    }
}
