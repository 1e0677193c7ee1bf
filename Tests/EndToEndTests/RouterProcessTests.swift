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

/// The router process over its socket: routes, bad input, reloads, and decisions and reservations that survive a
/// kill -9.
@Suite("Router process")
struct RouterProcessTests {
    /// Always open, so that the tests do not depend on the day they run.
    static let destinations = """
        destinations:
          - id: billing-in-house
            kind: in_house
            skills: [billing, refunds]
            certifications: [pci]
            transfer: sip:billing@pbx.example
            agents: 2
            average_handle_s: 420
            context: live
          - id: partner-bpo
            kind: partner
            skills: [billing, refunds]
            certifications: [pci]
            transfer: sip:overflow@bpo.example
            agents: 3
            average_handle_s: 480
            cost_per_min: 0.5
            context: live
        """

    /// Runs `body` with a router on ``destinations``, stopped and removed however `body` ends.
    static func with(_ body: (inout RunningService) async throws -> Void) async throws {
        try await RunningService.with(
            "router",
            prepare: { directory in
                mkdir(directory.appending("config"), 0o755)
                try SupervisorTests.write(Self.destinations, to: directory.appending("config/destinations.yaml"))
            },
            body
        )
    }

    @Test("decisions and open reservations survive kill -9 and a restart")
    func killAndRestart() async throws {
        try await Self.with { running in
            do {
                let first = try await running.route("h-1")
                let second = try await running.route("h-2")
                #expect(first.outcome == .routed && first.destinationID == "billing-in-house")
                var accept = Baton_Routing_V1_AcceptRequest()
                accept.reservationID = second.reservationID
                _ = try await running.call(Baton_Routing_V1_Router.Method.accept, accept)

                try await running.killAndRestart()

                var explain = Baton_Routing_V1_ExplainRequest()
                explain.handoffID = "h-1"
                let explained = try await running.call(Baton_Routing_V1_Router.Method.explain, explain)
                #expect(explained.decisions == [first])
                #expect(explained.reservations.map(\.state) == [.held])
                let inHouse = try #require(try await running.list().destinations.first)
                #expect(inHouse.heldReservations == 1 && inHouse.acceptedReservations == 1)
                // Both in-house agents are still taken: the next handoff overflows.
                #expect(try await running.route("h-3").destinationID == "partner-bpo")
            } catch {
                Issue.record("\(error)\n\(running.process.output)")
            }
        }
    }

    @Test("bad input: INVALID_ARGUMENT or NOT_FOUND naming the field")
    func badInput() async throws {
        try await Self.with { running in
            var route = Baton_Routing_V1_RouteRequest()
            route.handoffID = "h-1"
            let empty = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Routing_V1_Router.Method.route, route)
            }
            #expect(empty?.code == .invalidArgument && empty?.message.contains("call_id") == true)
            var update = Baton_Routing_V1_UpdateAvailabilityRequest()
            update.destinationID = "nowhere"
            let unknown = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Routing_V1_Router.Method.updateAvailability, update)
            }
            #expect(unknown?.code == .notFound && unknown?.message.contains("'nowhere'") == true)
            update.destinationID = "partner-bpo"
            update.queueLength = -3
            let negative = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Routing_V1_Router.Method.updateAvailability, update)
            }
            #expect(negative?.code == .invalidArgument && negative?.message.contains("queue_length is -3") == true)
            var explain = Baton_Routing_V1_ExplainRequest()
            explain.handoffID = "never-routed"
            let none = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Routing_V1_Router.Method.explain, explain)
            }
            #expect(none?.code == .notFound)
        }
    }

    @Test("an invalid destinations.yaml is refused on reload; the previous configuration keeps serving")
    func reload() async throws {
        try await Self.with { running in
            let file = running.directory.appending("config/destinations.yaml")
            try SupervisorTests.write(Self.destinations.replacingFirst("agents: 2", with: "agents: lots"), to: file)
            let refused = try await running.call(
                Baton_Routing_V1_Router.Method.reload,
                Baton_Routing_V1_ReloadRequest()
            )
            #expect(refused.problems.map(\.line) == [7])
            #expect(refused.problems.first?.message == "agents must be a number, not 'lots'")
            #expect(try await running.list().destinations.first?.agents == 2)
            try SupervisorTests.write(Self.destinations.replacingFirst("agents: 2", with: "agents: 7"), to: file)
            running.process.signal(SIGHUP)
            #expect(
                try await eventually(within: .seconds(10)) { try await running.list().destinations.first?.agents == 7 }
            )
        }
    }

    @Test(
        "restarted with a destinations.yaml that no longer validates, the router serves its last valid version and says so; with none it refuses to start"
    )
    func lastValidVersionAfterRestart() async throws {
        try await Self.with { running in
            let file = running.directory.appending("config/destinations.yaml")
            try SupervisorTests.write(Self.destinations.replacingFirst("agents: 2", with: "agents: lots"), to: file)
            try await running.killAndRestart()
            let listed = try await running.list()
            #expect(listed.destinations.first?.agents == 2)
            #expect(listed.problems.map { "\($0.file):\($0.line)" } == ["config/destinations.yaml:7"])
            #expect(listed.lastValidCopy.hasSuffix("router.last-valid/destinations.yaml"))
            #expect(running.process.output.contains("destinations refused; their last valid version serves"))

            let fresh = try await ServiceProcess.run(
                path: ServiceProcess.productsDirectory + "/router",
                arguments: ["--data-dir", "other-data", "--run-dir", "other-run"],
                in: running.directory
            )
            #expect(fresh.status == 1)
            #expect(fresh.output.contains("agents must be a number, not 'lots'"))
        }
    }

    @Test("batonctl call router Route takes and prints JSON")
    func batonctlCall() async throws {
        try await Self.with { running in
            let result = try await running.batonctl(
                [
                    "call", "router", "Route",
                    #"{"callId": "c-1", "handoffId": "h-1", "category": "payment", "skills": ["refunds"]}"#,
                ]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(#""destinationId":"billing-in-house""#))
            #expect(result.output.contains(#""transferAddress":"sip:billing@pbx.example""#))
        }
    }
}

extension RunningService {
    fileprivate func route(_ handoff: String) async throws -> Baton_Routing_V1_RouteReply {
        var request = Baton_Routing_V1_RouteRequest()
        request.callID = "call-\(handoff)"
        request.handoffID = handoff
        request.category = "payment"
        request.skills = ["billing"]
        return try await self.call(Baton_Routing_V1_Router.Method.route, request)
    }

    fileprivate func list() async throws -> Baton_Routing_V1_ListDestinationsReply {
        try await self.call(
            Baton_Routing_V1_Router.Method.listDestinations,
            Baton_Routing_V1_ListDestinationsRequest()
        )
    }
}
