import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import SwiftProtobuf
import Testing

@testable import RouterKit

/// The router's handlers, served from this process through their generated registration.
@Suite("Router API in process")
struct RouterAPITests {
    @Test("every method of baton.routing.v1.Router has a handler; Route and Explain answer through the typed client")
    func servesEveryMethod() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let prepared = Prepared<RouterCore>("the router's database")
        prepared.set(try harness.open())
        let methods = RouterAPI(prepared: prepared).methods
        #expect(methods.serves(Baton_Routing_V1_Router.info))
        try await withServer(methods) { client, _ in
            let router = Baton_Routing_V1_Router.Client(client)
            let routed = try await router.route(routeRequest("h-1"))
            #expect(routed.outcome == .routed && routed.attempt == 1)
            let explained = try await router.explain(.with { $0.handoffID = "h-1" })
            #expect(explained.decisions == [routed])
            let missing = await #expect(throws: RPCError.self) { try await router.route(routeRequest("")) }
            #expect(missing?.code == .invalidArgument && missing?.message.contains("handoff_id") == true)
        }
    }
}
