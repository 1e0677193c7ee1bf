import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Foundation
import SwiftProtobuf
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The reservation each acknowledged Route named, by handoff.
final class Acknowledged: Sendable {
    private let routes = Mutex<[String: String]>([:])

    func record(_ handoff: String, _ reservation: String) {
        self.routes.withLock { $0[handoff] = reservation }
    }

    var all: [String: String] { self.routes.withLock { $0 } }
}

/// The router and the metrics collector under load from several connections that retry, killed with SIGKILL a
/// few times and restarted: nothing acknowledged is lost, nothing is counted twice, and no destination holds more
/// reservations than it has agents. The kills come after set numbers of acknowledgements, not at set times.
@Suite("Chaos")
struct ChaosTests {
    /// Calls until the call succeeds, as a client that retries with the same ids does (30 s at most).
    static func retrying<Reply: Sendable>(_ call: () async throws -> Reply) async throws -> Reply {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while true {
            do {
                return try await call()
            } catch let error as RPCError where clock.now < deadline {
                _ = error
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Kills `running` with SIGKILL and restarts it each time `acknowledged` reaches one of `after`.
    static func killer(
        _ running: inout RunningService,
        acknowledged: Counter,
        after thresholds: [Int]
    ) async throws {
        for threshold in thresholds {
            #expect(await eventually(within: .seconds(30)) { acknowledged.value >= threshold })
            try await running.killAndRestart()
        }
    }

    static let options = CallOptions(timeout: .seconds(5), waitForReady: true)

    @Test("metrics collector: 4 writers, 3 kills; every acknowledged event is stored once")
    func metricsCollector() async throws {
        try await RunningService.with("metrics-collector") { running in
            let client = RPCClient(socketPath: running.socket)
            let metrics = Baton_Metrics_V1_MetricsCollector.Client(client)
            let acknowledged = Counter()
            let writers = 4
            let handoffs = 25
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for handoff in 0..<handoffs {
                            for (step, kind) in [Baton_Metrics_V1_EventKind.gateFired, .briefDisplayed, .humanGreeted]
                                .enumerated()
                            {
                                var request = Baton_Metrics_V1_RecordRequest()
                                request.event.eventID = "e-\(step)"
                                request.event.handoffID = "w\(writer)-h\(handoff)"
                                request.event.callID = "c-\(writer)-\(handoff)"
                                request.event.kind = kind
                                request.event.atUnixMs = now - 60_000 + Int64(step) * 1_000
                                _ = try await Self.retrying { try await metrics.record(request, options: Self.options) }
                                acknowledged.increment()
                            }
                        }
                    }
                }
                try await Self.killer(&running, acknowledged: acknowledged, after: [50, 130, 220])
                try await group.waitForAll()
            }
            var list = Baton_Metrics_V1_ListHandoffsRequest()
            list.limit = 1000
            let listed = try await Self.retrying { try await metrics.listHandoffs(list, options: Self.options) }
            #expect(listed.handoffs.count == writers * handoffs, "every acknowledged handoff is there")
            #expect(listed.handoffs.allSatisfy { $0.events == 3 }, "each with its 3 events, none counted twice")
            let summary = try await metrics.summary(options: Self.options)
            #expect(summary.overall.handoffsTotal == UInt64(writers * handoffs))
            await client.close()
        }
    }

    @Test("router: 4 callers, 3 kills; every acknowledged decision is explained, no destination over its agents")
    func router() async throws {
        try await RouterProcessTests.with { running in
            let client = RPCClient(socketPath: running.socket)
            let router = Baton_Routing_V1_Router.Client(client)
            let acknowledged = Counter()
            let routed = Acknowledged()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<4 {
                    group.addTask {
                        for index in 0..<40 {
                            var request = Baton_Routing_V1_RouteRequest()
                            request.callID = "call-\(caller)-\(index)"
                            request.handoffID = "h-\(caller)-\(index)"
                            request.category = "payment"
                            request.skills = ["billing"]
                            let reply = try await Self.retrying {
                                try await router.route(request, options: Self.options)
                            }
                            if reply.outcome == .routed {
                                routed.record(request.handoffID, reply.reservationID)
                                // Release every other one, so that capacity turns over while the router dies.
                                if index % 2 == 0 {
                                    var release = Baton_Routing_V1_ReleaseRequest()
                                    release.reservationID = reply.reservationID
                                    release.outcome = .connected
                                    _ = try? await Self.retrying {
                                        try await router.release(release, options: Self.options)
                                    }
                                }
                            }
                            acknowledged.increment()
                        }
                    }
                }
                try await Self.killer(&running, acknowledged: acknowledged, after: [20, 60, 110])
                try await group.waitForAll()
            }
            for (handoff, reservation) in routed.all {
                let explained = try await Self.retrying {
                    try await router.explain(.with { $0.handoffID = handoff }, options: Self.options)
                }
                #expect(
                    explained.decisions.contains { $0.reservationID == reservation },
                    "\(handoff) kept its decision"
                )
            }
            let destinations = try await router.listDestinations(options: Self.options).destinations
            for destination in destinations {
                #expect(destination.heldReservations + destination.acceptedReservations <= destination.agents)
            }
            await client.close()
        }
    }
}
