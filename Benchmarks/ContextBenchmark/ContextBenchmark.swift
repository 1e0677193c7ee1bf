import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import SwiftProtobuf
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `context-assembler-benchmark`: the four processes for real, and the platform's share of time-to-context-ready
/// (from sending the Record that fires a gate to its brief arriving on a watching desk's stream) with 1,000 and
/// 10,000 open calls under a background of conversation events; the durable, evaluated Record rate at 64 in
/// flight; the Health/Check baseline of the same run; and each process's RSS. Run by hand.
@main
struct ContextBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context-assembler-benchmark",
        abstract: "Time-to-context-ready, Record throughput and memory of the context-assembler with its peers."
    )

    @Option(help: "Open-call counts to measure at, comma-separated.") var calls = "1000,10000"
    @Option(help: "Turns each open call has before the measurement.") var turns = 30
    @Option(help: "Background conversation events per second, spread over the open calls.") var background = 3000
    @Option(help: "Gates fired (and briefs timed) at each open-call count.") var samples = 500
    @Option(help: "Seconds of Record throughput at 64 in flight.") var seconds = 5

    func run() async throws {
        let directory = "/tmp/baton-context-benchmark-\(getpid())"
        mkdir(directory, 0o700)
        defer { _ = system("rm -rf '\(directory)'") }
        try Self.writeConfiguration(in: directory)
        let arguments = [
            "--run-dir", directory + "/run", "--data-dir", directory + "/data", "--config-dir", directory + "/config",
            "--log-level", "error",
        ]
        var pids: [(name: String, pid: Int32)] = []
        defer { pids.forEach { Benchmarking.stop($0.pid) } }
        var logger = Logger(label: "benchmark")
        logger.logLevel = .critical
        var clients: [String: RPCClient] = [:]
        for name in ["gate-evaluator", "router", "metrics-collector", "context-assembler"] {
            pids.append((name, try Benchmarking.spawnSibling(name, arguments)))
            clients[name] = RPCClient(socketPath: "\(directory)/run/\(name).sock", logger: logger)
            try await Benchmarking.waitUntilServing(clients[name]!)
        }
        let assemblerClient = clients["context-assembler"]!
        let assembler = Baton_Context_V1_ContextAssembler.Client(assemblerClient)
        // A second connection for the desk, as a desk is another process.
        let deskClient = RPCClient(socketPath: "\(directory)/run/context-assembler.sock", logger: logger)
        let desk = Baton_Context_V1_ContextAssembler.Client(deskClient)
        let health = Grpc_Health_V1_Health.Client(assemblerClient)

        let baseline = try await Benchmarking.rate(calls: 64 * 2000, inFlight: 64, client: assemblerClient) { _ in
            _ = try await health.check()
        }
        StandardStream.writeLine(
            String(
                format: "Health/Check baseline, 64 in flight: %.0f calls/s, p50 %d us, p99 %d us",
                baseline.perSecond,
                baseline.p50Microseconds,
                baseline.p99Microseconds
            )
        )

        let record = try await Self.recordRate(assembler, client: assemblerClient, seconds: self.seconds)
        StandardStream.writeLine(
            String(
                format: "Record (durable, evaluated), 64 in flight: %.0f events/s, p50 %d us, p99 %d us",
                record.perSecond,
                record.p50Microseconds,
                record.p99Microseconds
            )
        )

        var opened = 0
        for target in self.calls.split(separator: ",").compactMap({ Int($0) }) {
            try await Self.open(from: opened, to: target, turns: self.turns, assembler, client: assemblerClient)
            opened = max(opened, target)
            let times = try await self.timeToContextReady(assembler, desk: desk, openCalls: opened, round: target)
            StandardStream.writeLine(
                String(
                    format: "%d open calls of %d turns, %d background events/s: time-to-context-ready "
                        + "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d briefs)",
                    opened,
                    self.turns,
                    self.background,
                    times[times.count / 2],
                    times[times.count * 99 / 100],
                    times.last ?? 0,
                    times.count
                )
            )
            StandardStream.writeLine(
                "  RSS: "
                    + pids.map { process in
                        "\(process.name) "
                            + (Benchmarking.residentMiB(of: process.pid).map { String(format: "%.1f MiB", $0) }
                                ?? "gone")
                    }.joined(separator: ", ")
            )
        }
        for client in clients.values {
            await client.close()
        }
        await deskClient.close()
    }

    /// Durable Record events per second: 64 callers, each on its own call, sending AI turns (each evaluated).
    static func recordRate(
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        client: RPCClient,
        seconds: Int
    ) async throws -> Benchmarking.Rate {
        for caller in 0..<64 {
            _ = try await assembler.openCall(Self.openRequest("rate-\(caller)"))
        }
        // Calibrate the count from a short run, then measure about `seconds` of it.
        let probe = try await Benchmarking.rate(calls: 64 * 50, inFlight: 64, client: client) { index in
            _ = try await assembler.record(Self.turn("rate-\(index / 50)", "p-\(index)"))
        }
        let perCaller = max(50, Int(probe.perSecond * Double(seconds)) / 64)
        return try await Benchmarking.rate(calls: 64 * perCaller, inFlight: 64, client: client) { index in
            _ = try await assembler.record(Self.turn("rate-\(index / perCaller)", "r-\(index)"))
        }
    }

    /// Opens calls `from..<to`, each with `turns` turns.
    static func open(
        from: Int,
        to: Int,
        turns: Int,
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        client: RPCClient
    ) async throws {
        guard to > from else {
            return
        }
        let count = to - from
        _ = try await Benchmarking.rate(calls: count - count % 50, inFlight: 50, client: client) { index in
            let call = "open-\(from + index)"
            _ = try await assembler.openCall(Self.openRequest(call))
            for turn in 0..<turns {
                _ = try await assembler.record(Self.turn(call, "t-\(turn)"))
            }
        }
    }

    /// Fires `samples` gates one after the other while the background runs, timing each from the Record sent to
    /// the brief received on the desk's stream. Each gate fires on a call of its own (a fresh call with a few
    /// facts), so that every sample is the path of a first handoff.
    func timeToContextReady(
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        desk: Baton_Context_V1_ContextAssembler.Client,
        openCalls: Int,
        round: Int
    ) async throws -> [Double] {
        let arrivals = Arrivals()
        let stream = try desk.watchBriefs(
            .with {
                $0.destinationID = "bench-desk"
                $0.agentID = "bench-agent"
            }
        )
        let watcher = Task {
            for try await update in stream where update.kind == .new {
                arrivals.arrived(update.brief.handoffID)
            }
        }
        defer { watcher.cancel() }
        let background = self.background
        let noise = Task {
            // `background` events a second, spread over the open calls, in ticks of 10 ms.
            var sent = 0
            let clock = ContinuousClock()
            let start = clock.now
            while !Task.isCancelled {
                let due = Int(Benchmarking.seconds(clock.now - start) * Double(background))
                await withTaskGroup(of: Void.self) { group in
                    while sent < due {
                        let call = "open-\(sent % openCalls)"
                        let id = "bg-\(round)-\(sent)"
                        group.addTask { _ = try? await assembler.record(Self.turn(call, id)) }
                        sent += 1
                    }
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        defer { noise.cancel() }
        try await Task.sleep(for: .milliseconds(500))
        var times: [Double] = []
        let clock = ContinuousClock()
        for sample in 0..<self.samples {
            let call = "gate-\(round)-\(sample)"
            _ = try await assembler.openCall(Self.openRequest(call))
            _ = try await assembler.record(
                Self.event(
                    call,
                    "n",
                    .slotCaptured(
                        .with {
                            $0.name = "identity.name"
                            $0.value = "Jane Doe"
                        }
                    )
                )
            )
            let handoff = "\(call)-h1"
            let sent = clock.now
            let reply = try await assembler.record(
                Self.event(call, "pay", .intentDetected(.with { $0.intent = "make_payment" }))
            )
            guard reply.outcome == .handoff, reply.plan.destinationID == "bench-desk" else {
                throw ConfigurationError("sample \(sample) did not hand off to bench-desk: \(reply)")
            }
            guard let arrived = await arrivals.wait(for: handoff) else {
                throw ConfigurationError("the brief of \(handoff) never reached the desk")
            }
            times.append(Benchmarking.seconds(arrived - sent) * 1000)
            _ = try await assembler.closeCall(.with { $0.callID = call })
        }
        return times.sorted()
    }

    static func openRequest(_ call: String) -> Baton_Context_V1_OpenCallRequest {
        .with {
            $0.callID = call
            $0.workflowID = "billing-support"
            $0.caller = .with {
                $0.phoneNumber = "+353871234567"
                $0.language = "en-IE"
            }
        }
    }

    static func turn(_ call: String, _ id: String) -> Baton_Context_V1_RecordRequest {
        Self.event(call, id, .aiTurn(.with { $0.text = "Let me look at your bill for this month, one moment." }))
    }

    static func event(
        _ call: String,
        _ id: String,
        _ kind: Baton_Context_V1_Event.OneOf_Kind
    ) -> Baton_Context_V1_RecordRequest {
        .with {
            $0.event = .with {
                $0.callID = call
                $0.eventID = id
                $0.kind = kind
            }
        }
    }

    /// One workflow file from the repository, and one destination that always takes payments with ample agents.
    static func writeConfiguration(in directory: String) throws {
        guard
            system(
                "mkdir -p '\(directory)/config/workflows' && cp config/workflows/*.yaml '\(directory)/config/workflows/'"
            ) == 0
        else {
            throw ConfigurationError("cannot copy ./config/workflows; run from the repository's root")
        }
        let destinations = """
            policy:
              target_live_human_s: 5
              max_live_human_s: 8
              prefer: in_house
              ring_and_greet_s: 3
              reservation_timeout_s: 300
            destinations:
              - id: bench-desk
                kind: in_house
                skills: [billing, refunds, payments, pci, retention, contracts, general, bereavement]
                certifications: [pci, legal_review]
                hours:
                  time_zone: UTC
                  open:
                    - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
                transfer: sip:bench@pbx.test
                agents: 100000
                average_handle_s: 300
                cost_per_min: 1.0
                context: live

            """
        try destinations.write(toFile: directory + "/config/destinations.yaml", atomically: true, encoding: .utf8)
    }
}

/// When each brief reached the desk.
final class Arrivals: Sendable {
    private let times = Mutex<[String: ContinuousClock.Instant]>([:])

    func arrived(_ handoff: String) {
        let now = ContinuousClock.now
        self.times.withLock { $0[handoff] = now }
    }

    func wait(for handoff: String) async -> ContinuousClock.Instant? {
        for _ in 0..<5000 {
            if let time = self.times.withLock({ $0.removeValue(forKey: handoff) }) {
                return time
            }
            try? await Task.sleep(for: .microseconds(200))
        }
        return nil
    }
}
