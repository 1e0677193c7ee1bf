import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `soak-benchmark`: steady load on every process for a while, printing each one's resident memory every minute,
/// which must stay flat; run by hand, not by the tests. Routes are released as they are made and the metrics events
/// fall on a fixed set of handoffs, so that nothing the processes keep by design grows with the run.
@main
struct SoakBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak-benchmark",
        abstract: "Steady load on every Baton process for --minutes, printing each one's RSS every minute."
    )

    @Option(help: "How long to run, in minutes.") var minutes = 10
    @Option(help: "Calls per second to each of the gate-evaluator, the router and the metrics collector.") var rate =
        200

    func run() async throws {
        let directory = "/tmp/baton-soak-\(getpid())"
        mkdir(directory, 0o700)
        defer { _ = system("rm -rf '\(directory)'") }
        let config = ServiceProcessLayout(directory: directory)
        try config.write()
        var pids: [(name: String, pid: Int32)] = []
        defer { pids.forEach { Benchmarking.stop($0.pid) } }
        for name in ["context-assembler", "gate-evaluator", "router", "metrics-collector"] {
            pids.append((name, try Benchmarking.spawnSibling(name, config.arguments)))
        }
        var logger = Logger(label: "soak")
        logger.logLevel = .critical
        let clients = pids.map { RPCClient(socketPath: "\(directory)/run/\($0.name).sock", logger: logger) }
        for client in clients {
            try await Benchmarking.waitUntilServing(client)
        }
        let gates = Baton_Gates_V1_GateEvaluator.Client(clients[1])
        let router = Baton_Routing_V1_Router.Client(clients[2])
        let metrics = Baton_Metrics_V1_MetricsCollector.Client(clients[3])
        let health = Grpc_Health_V1_Health.Client(clients[0])
        StandardStream.writeLine(
            "minute  " + pids.map { $0.name.padding(toLength: 18, withPad: " ", startingAt: 0) }.joined()
        )
        func report(_ minute: Int) {
            let columns = pids.map { process in
                (Benchmarking.residentMiB(of: process.pid).map { String(format: "%.1f MiB", $0) } ?? "gone")
                    .padding(toLength: 18, withPad: " ", startingAt: 0)
            }
            StandardStream.writeLine(
                String(minute).padding(toLength: 8, withPad: " ", startingAt: 0) + columns.joined()
            )
        }
        report(0)
        let clock = ContinuousClock()
        let started = clock.now
        var tick = 0
        var nextReport = 1
        while clock.now - started < .seconds(self.minutes * 60) {
            let second = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<self.rate {
                    let n = tick * self.rate + index
                    group.addTask {
                        var evaluate = Baton_Gates_V1_EvaluateRequest()
                        evaluate.workflowID = "billing-support"
                        evaluate.context.intents = [n % 2 == 0 ? "make_payment" : "check_balance"]
                        _ = try await gates.evaluate(evaluate)
                        var route = Baton_Routing_V1_RouteRequest()
                        route.callID = "call-\(n)"
                        route.handoffID = "soak-\(n)"
                        route.category = "payment"
                        route.skills = ["payments"]
                        let routed = try await router.route(route)
                        if routed.outcome == .routed {
                            var release = Baton_Routing_V1_ReleaseRequest()
                            release.reservationID = routed.reservationID
                            release.outcome = .connected
                            _ = try await router.release(release)
                        }
                        // Events of 10,000 handoffs, over and over: the collector's working set stays the same
                        // size, so that its memory can stay flat (each handoff it keeps costs memory by design).
                        var record = Baton_Metrics_V1_RecordRequest()
                        record.event.eventID = "e-\(n)"
                        record.event.handoffID = "soak-\(n % 10_000)"
                        record.event.callID = "call-\(n)"
                        record.event.kind = .gateFired
                        record.event.atUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
                        _ = try await metrics.record(record)
                        _ = try await health.check()
                    }
                }
                try await group.waitForAll()
            }
            tick += 1
            if clock.now - started >= .seconds(nextReport * 60) {
                report(nextReport)
                nextReport += 1
            }
            let spent = clock.now - second
            if spent < .seconds(1) {
                try await Task.sleep(for: .seconds(1) - spent)
            }
        }
        if nextReport <= self.minutes {
            report(self.minutes)
        }
        StandardStream.writeLine("\(tick) seconds of load at \(self.rate) calls per second to each process")
        for client in clients {
            await client.close()
        }
    }
}

/// The scratch directory a soak runs in: the example configuration, copied, and the run and data folders.
struct ServiceProcessLayout {
    let directory: String

    var arguments: [String] {
        [
            "--run-dir", self.directory + "/run", "--data-dir", self.directory + "/data", "--config-dir",
            self.directory + "/config", "--log-level", "error",
        ]
    }

    /// Copies `config/` from the working directory (the repository's root, as Benchmarks/run.sh runs it).
    func write() throws {
        guard system("cp -r config '\(self.directory)/config'") == 0 else {
            throw ConfigurationError("cannot copy ./config to \(self.directory); run from the repository's root")
        }
    }
}
