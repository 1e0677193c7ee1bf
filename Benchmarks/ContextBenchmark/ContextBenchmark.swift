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
    @Option(
        help: """
            An existing folder to work in (a fresh subfolder holds the sockets and databases, removed at the end); \
            /dev/shm measures without the disk.
            """
    ) var under = "/tmp"

    func validate() throws {
        let counts = self.calls.split(separator: ",", omittingEmptySubsequences: false)
        guard !counts.isEmpty, counts.allSatisfy({ (Int($0) ?? 0) > 0 }) else {
            throw ValidationError(
                "--calls '\(self.calls)': expected positive counts separated by commas, e.g. 1000,10000"
            )
        }
        guard self.turns >= 0, self.background >= 0, self.samples > 0, self.seconds > 0 else {
            throw ValidationError(
                "--turns and --background must not be negative; --samples and --seconds must be positive"
            )
        }
    }

    func run() async throws {
        let directory = "\(self.under)/baton-context-benchmark-\(getpid())"
        guard mkdir(directory, 0o700) == 0 else {
            throw ValidationError("--under '\(self.under)': cannot make \(directory) there (errno \(errno))")
        }
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

        let sync = try Self.syncLatency(in: directory + "/data")
        StandardStream.writeLine(
            String(
                format: "The disk's floor: a 4 KiB append and fdatasync in the data directory, one at a time: "
                    + "p50 %d us, p99 %d us (a gated Record waits for two commits in turn, the router's and the "
                    + "assembler's)",
                sync.p50,
                sync.p99
            )
        )
        try await Self.serialLegs(
            assembler,
            client: assemblerClient,
            gates: clients["gate-evaluator"]!,
            router: clients["router"]!
        )

        let (record, cpuBefore, cpuAfter) = try await Self.recordRate(
            assembler,
            client: assemblerClient,
            seconds: self.seconds,
            pids: pids
        )
        StandardStream.writeLine(
            String(
                format: "Record (durable, evaluated), 64 in flight: %.0f events/s, p50 %d us, p99 %d us",
                record.perSecond,
                record.p50Microseconds,
                record.p99Microseconds
            )
        )
        // Where a Record's cost lies: the CPU each process used over the run, per Record, and the rate the
        // machine's cores could reach if they did nothing else.
        let events = Double(record.calls)
        let perRecord = zip(cpuBefore, cpuAfter).map { ($1.name, ($1.seconds - $0.seconds) / events * 1e6) }
        let total = perRecord.reduce(0) { $0 + $1.1 }
        StandardStream.writeLine(
            "  CPU per Record: "
                + perRecord.filter { $0.1 >= 0.5 }.map { String(format: "%@ %.0f us", $0.0, $0.1) }
                .joined(separator: ", ")
                + String(
                    format: "; %.0f us in all, so %d cores reach at most %.0f events/s",
                    total,
                    Self.cores,
                    Double(Self.cores) / total * 1e6
                )
        )

        var opened = 0
        for target in self.calls.split(separator: ",").compactMap({ Int($0) }) {
            try await Self.open(from: opened, to: target, turns: self.turns, assembler, client: assemblerClient)
            opened = max(opened, target)
            let (times, replies) = try await self.timeToContextReady(
                assembler,
                desk: desk,
                openCalls: opened,
                round: target
            )
            StandardStream.writeLine(
                String(
                    format: "%d open calls of %d turns, %d background events/s: time-to-context-ready "
                        + "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d briefs); the Record's reply p50 %.2f ms, "
                        + "p99 %.2f ms",
                    opened,
                    self.turns,
                    self.background,
                    times[times.count / 2],
                    times[times.count * 99 / 100],
                    times.last ?? 0,
                    times.count,
                    replies[replies.count / 2],
                    replies[replies.count * 99 / 100]
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

    static let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// What one durable commit cannot go below on this disk: 500 appends of 4 KiB to a file in `directory`, each
    /// followed by `fdatasync`, as SQLite's log is written and synced at every commit; microseconds.
    static func syncLatency(in directory: String) throws -> (p50: Int, p99: Int) {
        let path = directory + "/sync-floor"
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer {
            Glibc.close(descriptor)
            unlink(path)
        }
        let page = [UInt8](repeating: 0x5a, count: 4096)
        let clock = ContinuousClock()
        var times: [Int] = []
        for _ in 0..<500 {
            let start = clock.now
            guard page.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == page.count,
                fdatasync(descriptor) == 0
            else {
                throw ConfigurationError("cannot write and sync \(path): \(String(cString: strerror(errno)))")
            }
            times.append(Int(Benchmarking.seconds(clock.now - start) * 1e6))
        }
        times.sort()
        return (times[times.count / 2], times[times.count * 99 / 100])
    }

    /// Each process's CPU seconds so far, this benchmark's own last.
    static func cpu(of pids: [(name: String, pid: Int32)]) -> [(name: String, seconds: Double)] {
        (pids + [("benchmark", getpid())]).map { ($0.name, Benchmarking.cpuSeconds(of: $0.pid) ?? 0) }
    }

    /// The legs of a gated Record one at a time on an idle machine, the floor under time-to-context-ready: a
    /// round trip (Health/Check), Evaluate on the gate-evaluator, a durable Route on the router, and a Record that
    /// continues (Evaluate and a durable write). A Record that fires a gate adds a Route to the last.
    static func serialLegs(
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        client: RPCClient,
        gates: RPCClient,
        router: RPCClient
    ) async throws {
        let health = Grpc_Health_V1_Health.Client(client)
        let evaluator = Baton_Gates_V1_GateEvaluator.Client(gates)
        let routes = Baton_Routing_V1_Router.Client(router)
        _ = try await assembler.openCall(Self.openRequest("legs"))
        let count = 500
        let legs: [(String, RPCClient, @Sendable (Int) async throws -> Void)] = [
            ("Health/Check", client, { _ in _ = try await health.check() }),
            (
                "Evaluate", gates,
                { index in
                    _ = try await evaluator.evaluate(
                        .with {
                            $0.workflowID = "billing-support"
                            $0.context.callID = "legs"
                            $0.context.trigger = .with {
                                $0.id = "e-\(index)"
                                $0.kind = .aiTurn
                                $0.text = "Let me look at your bill for this month, one moment."
                            }
                        }
                    )
                }
            ),
            (
                "Route (durable)", router,
                { index in
                    _ = try await routes.route(
                        .with {
                            $0.callID = "legs-\(index)"
                            $0.handoffID = "legs-\(index)-h1"
                            $0.category = "payment"
                            $0.skills = ["payments"]
                        }
                    )
                }
            ),
            ("Record, continue", client, { index in _ = try await assembler.record(Self.turn("legs", "l-\(index)")) }),
        ]
        var parts: [String] = []
        for (name, connection, call) in legs {
            let rate = try await Benchmarking.rate(calls: count, inFlight: 1, client: connection, call)
            parts.append(String(format: "%@ p50 %d us, p99 %d us", name, rate.p50Microseconds, rate.p99Microseconds))
        }
        StandardStream.writeLine("One at a time, the legs of a gated Record: " + parts.joined(separator: "; "))
        _ = try await assembler.closeCall(.with { $0.callID = "legs" })
    }

    /// Durable Record events per second: 64 callers, each on its own call, sending AI turns (each evaluated); with
    /// each process's CPU seconds before and after the measured run.
    static func recordRate(
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        client: RPCClient,
        seconds: Int,
        pids: [(name: String, pid: Int32)]
    ) async throws -> (
        Benchmarking.Rate, before: [(name: String, seconds: Double)], after: [(name: String, seconds: Double)]
    ) {
        for caller in 0..<64 {
            _ = try await assembler.openCall(Self.openRequest("rate-\(caller)"))
        }
        // Calibrate the count from a short run, then measure about `seconds` of it.
        let probe = try await Benchmarking.rate(calls: 64 * 50, inFlight: 64, client: client) { index in
            _ = try await assembler.record(Self.turn("rate-\(index / 50)", "p-\(index)"))
        }
        let perCaller = max(50, Int(probe.perSecond * Double(seconds)) / 64)
        let before = Self.cpu(of: pids)
        let rate = try await Benchmarking.rate(calls: 64 * perCaller, inFlight: 64, client: client) { index in
            _ = try await assembler.record(Self.turn("rate-\(index / perCaller)", "r-\(index)"))
        }
        return (rate, before, Self.cpu(of: pids))
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
    /// the brief received on the desk's stream, and to the Record's reply (both sorted). Each gate fires on a call
    /// of its own (a fresh call with a few facts), so that every sample is the path of a first handoff.
    func timeToContextReady(
        _ assembler: Baton_Context_V1_ContextAssembler.Client,
        desk: Baton_Context_V1_ContextAssembler.Client,
        openCalls: Int,
        round: Int
    ) async throws -> (briefs: [Double], replies: [Double]) {
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
            // `background` events a second, spread over the open calls, each sent when it is due (checked every
            // millisecond) without waiting for the ones before: open calls talk independently of each other, so
            // their events neither arrive in bursts nor wait for the assembler's replies.
            await withDiscardingTaskGroup { group in
                var sent = 0
                let clock = ContinuousClock()
                let start = clock.now
                while !Task.isCancelled {
                    let due = Int(Benchmarking.seconds(clock.now - start) * Double(background))
                    while sent < due {
                        let call = "open-\(sent % openCalls)"
                        let id = "bg-\(round)-\(sent)"
                        group.addTask { _ = try? await assembler.record(Self.turn(call, id)) }
                        sent += 1
                    }
                    try? await Task.sleep(for: .milliseconds(1))
                }
                group.cancelAll()
            }
        }
        defer { noise.cancel() }
        try await Task.sleep(for: .milliseconds(500))
        var times: [Double] = []
        var replies: [Double] = []
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
            replies.append(Benchmarking.seconds(clock.now - sent) * 1000)
            guard reply.outcome == .handoff, reply.plan.destinationID == "bench-desk" else {
                throw ConfigurationError("sample \(sample) did not hand off to bench-desk: \(reply)")
            }
            guard let arrived = await arrivals.wait(for: handoff) else {
                throw ConfigurationError("the brief of \(handoff) never reached the desk")
            }
            times.append(Benchmarking.seconds(arrived - sent) * 1000)
            _ = try await assembler.closeCall(.with { $0.callID = call })
        }
        return (times.sorted(), replies.sorted())
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

/// When each brief reached the desk, handed to the one waiting for it the moment it arrives (a poll would add its
/// own interval to every figure).
final class Arrivals: Sendable {
    private struct State {
        var arrived: [String: ContinuousClock.Instant] = [:]
        var waiting: [String: CheckedContinuation<ContinuousClock.Instant?, Never>] = [:]
    }

    private let state = Mutex(State())

    func arrived(_ handoff: String) {
        let now = ContinuousClock.now
        let waiter = self.state.withLock { state in
            guard let waiter = state.waiting.removeValue(forKey: handoff) else {
                state.arrived[handoff] = now
                return nil as CheckedContinuation<ContinuousClock.Instant?, Never>?
            }
            return waiter
        }
        waiter?.resume(returning: now)
    }

    /// When `handoff`'s brief arrived, or nil if it has not within `bound`.
    func wait(for handoff: String, bound: Duration = .seconds(5)) async -> ContinuousClock.Instant? {
        let timeout = Task {
            try await Task.sleep(for: bound)
            let waiter = self.state.withLock { $0.waiting.removeValue(forKey: handoff) }
            waiter?.resume(returning: nil)
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let time = self.state.withLock { state in
                guard let time = state.arrived.removeValue(forKey: handoff) else {
                    state.waiting[handoff] = continuation
                    return nil as ContinuousClock.Instant?
                }
                return time
            }
            if let time {
                continuation.resume(returning: time)
            }
        }
    }
}
