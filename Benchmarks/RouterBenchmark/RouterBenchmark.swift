import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import RouterKit

#if canImport(Glibc)
import Glibc
#endif

/// `router benchmark`: route decisions per second with 50 destinations: deciding alone in process, durable
/// decisions in process (RouterCore on a SQLite file), and durable decisions over the socket with p50/p99,
/// beside Health/Check over the same socket in the same run.
@main
struct RouterBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router-benchmark",
        abstract: "Measure route decisions per second (in process and over the socket); run by hand, not by the tests."
    )

    @Option(help: "Decisions in process.") var inProcess = 200_000
    @Option(help: "Calls over the socket, for Route and for the Health/Check baseline each.") var calls = 100_000
    @Option(help: "Calls in flight.") var inFlight = 64

    func run() async throws {
        let directory = "/tmp/baton-router-bench-\(getpid())"
        for path in [directory, directory + "/config", directory + "/data", directory + "/inproc"] {
            mkdir(path, 0o700)
        }
        defer { _ = system("rm -rf '\(directory)'") }
        let yaml = Self.destinationsYAML()
        try yaml.write(toFile: directory + "/config/destinations.yaml", atomically: false, encoding: .utf8)
        let configuration = try DestinationsFile.parse(yaml, file: "bench.yaml")
        let requests = (0..<1000).map(Self.request)
        print("\(configuration.destinations.count) destinations; \(requests.count) handoff shapes, cycled")

        // Deciding alone, one core: with the rules that depend only on a handoff's shape worked out again for each
        // decision, and kept per shape as the router keeps them.
        let clock = ContinuousClock()
        let now = Date()
        var fixed: [[String?]] = []
        for kept in [false, true] {
            let started = clock.now
            var routed = 0
            for index in 0..<self.inProcess {
                let handoff = RouterCore.handoff(requests[index % requests.count])
                if kept && fixed.count < requests.count {
                    fixed.append(configuration.fixedProblems(category: handoff.category, skills: handoff.skills))
                }
                let shape = kept ? fixed[index % requests.count] : nil
                if configuration.decide(handoff, live: { _ in LiveState() }, now: now, fixed: shape).chosen != nil {
                    routed += 1
                }
            }
            let decide = Double(self.inProcess) / Benchmarking.seconds(clock.now - started)
            print(
                "in process, deciding afresh only (no kept decision), shape rules \(kept ? "kept" : "worked out each time"): "
                    + "\(Int(decide)) decisions/s on one core (\(routed * 100 / self.inProcess)% routed)"
            )
        }

        // Durable, in process.
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let core = try RouterCore(
            file: directory + "/config/destinations.yaml",
            database: directory + "/inproc/router.sqlite",
            logger: logger
        )
        let perTask = self.inProcess / self.inFlight
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<self.inFlight {
                group.addTask {
                    for index in 0..<perTask {
                        var request = requests[index % requests.count]
                        request.handoffID = Self.handoffID("p", task * perTask + index)
                        _ = try await core.route(request)
                    }
                }
            }
            try await group.waitForAll()
        }
        let durable = Double(perTask * self.inFlight) / Benchmarking.seconds(clock.now - started)
        print("in process, durable (\(self.inFlight) concurrent): \(Int(durable)) decisions/s")

        // Over the socket.
        let pid = try Benchmarking.spawnSibling(
            "router",
            [
                "--run-dir", directory + "/run", "--data-dir", directory + "/data", "--config-dir",
                directory + "/config",
                "--log-level", "error",
            ]
        )
        defer { Benchmarking.stop(pid) }
        let client = RPCClient(socketPath: directory + "/run/router.sock", logger: logger)
        try await Benchmarking.waitUntilServing(client)
        let cpuBefore = (server: Benchmarking.cpuSeconds(of: pid), client: Benchmarking.cpuSeconds(of: getpid()))
        let route = try await Benchmarking.rate(calls: self.calls, inFlight: self.inFlight, client: client) { index in
            var request = requests[index % requests.count]
            request.handoffID = Self.handoffID("s", index)
            _ = try await client.unary(Baton_Routing_V1_Router.Method.route, request)
        }
        let cpuAfter = (server: Benchmarking.cpuSeconds(of: pid), client: Benchmarking.cpuSeconds(of: getpid()))
        let health = try await Benchmarking.rate(calls: self.calls, inFlight: self.inFlight, client: client) { _ in
            _ = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
            )
        }
        await client.close()
        print(
            "over the socket, \(self.inFlight) in flight: Route \(Int(route.perSecond)) durable decisions/s, "
                + "p50 \(route.p50Microseconds) µs, p99 \(route.p99Microseconds) µs"
        )
        if let serverBefore = cpuBefore.server, let serverAfter = cpuAfter.server, let clientBefore = cpuBefore.client,
            let clientAfter = cpuAfter.client
        {
            let calls = Double(self.calls / self.inFlight * self.inFlight)
            print(
                "CPU per Route over the socket: server \(Int((serverAfter - serverBefore) / calls * 1e6)) µs, "
                    + "client \(Int((clientAfter - clientBefore) / calls * 1e6)) µs"
            )
        }
        print(
            "baseline, same socket and run: Health/Check \(Int(health.perSecond)) calls/s, "
                + "p50 \(health.p50Microseconds) µs, p99 \(health.p99Microseconds) µs"
        )
    }

    /// The `index`th handoff's id, scattered as integrators' ids (UUIDs, say) are: the handoff index takes inserts
    /// all over, not only at its end. Multiplying by an odd constant is a bijection, so the ids are unique.
    static func handoffID(_ prefix: String, _ index: Int) -> String {
        prefix + "-" + String(UInt64(index) &* 0x9E37_79B9_7F4A_7C15, radix: 16)
    }

    static let skillSets = [["billing"], ["billing", "refunds"], ["general"], ["bereavement"], ["payments"]]

    static func request(_ index: Int) -> Baton_Routing_V1_RouteRequest {
        var request = Baton_Routing_V1_RouteRequest()
        request.callID = "call-\(index)"
        request.category = ["payment", "grief", "judgement", "caller_request"][index % 4]
        request.skills = Self.skillSets[index % Self.skillSets.count]
        request.priority = index % 10 == 0 ? .urgent : .normal
        request.briefSummary = "caller asks about a double charge on the November bill"
        return request
    }

    /// 50 destinations: in-house teams and partners across time zones, with enough agents that the run does not
    /// exhaust them (every decision reserves one).
    static func destinationsYAML() -> String {
        var text = """
            policy:
              categories:
                payment: {requires: [pci]}
                grief: {prefer: in_house, requires_live_context: true}
            destinations:

            """
        let zones = ["Europe/Dublin", "America/New_York", "Asia/Manila", "Europe/Berlin", "America/Los_Angeles"]
        for index in 0..<50 {
            let skills = (Self.skillSets[index % 5] + Self.skillSets[(index + 2) % 5]).joined(separator: ", ")
            text += """
                  - id: destination-\(index)
                    kind: \(index % 3 == 0 ? "partner" : "in_house")
                    skills: [\(skills), general]
                    certifications: [\(index % 2 == 0 ? "pci" : "iso27001")]
                    hours:
                      time_zone: \(zones[index % zones.count])
                      open:
                        - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
                    transfer: sip:team-\(index)@example
                    agents: 1000000
                    average_handle_s: \(300 + index * 7)
                    cost_per_min: \(Double(index % 7) / 4 + 0.5)
                    context: \(index % 4 == 0 ? "none" : "live")

                """
        }
        return text
    }
}
