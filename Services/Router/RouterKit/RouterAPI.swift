import BatonProto
import BatonRPC
import BatonRuntime

/// `baton.routing.v1.Router`, answered by a ``RouterCore`` once it is open.
struct RouterAPI: Sendable {
    let prepared: Prepared<RouterCore>

    var methods: RPCMethods {
        var methods = RPCMethods()
        let prepared = self.prepared
        // Route and Decline answer a RouteReply that the core encoded once, for the store and the reply.
        methods.unaryEncoded(Baton_Routing_V1_Router.Method.route) { (request: Baton_Routing_V1_RouteRequest, _) in
            let core = try prepared.get()
            guard !request.callID.isEmpty else {
                throw RPCError.invalidArgument("call_id is empty; expected the call's id")
            }
            guard !request.handoffID.isEmpty else {
                throw RPCError.invalidArgument("handoff_id is empty; expected the handoff's id")
            }
            return try await core.route(request).encoded
        }
        methods.unary(Baton_Routing_V1_Router.Method.accept) {
            (request: Baton_Routing_V1_AcceptRequest, _) -> Baton_Routing_V1_ReservationReply in
            let core = try prepared.get()
            var reply = Baton_Routing_V1_ReservationReply()
            reply.reservation = try await core.accept(request.reservationID)
            return reply
        }
        methods.unaryEncoded(Baton_Routing_V1_Router.Method.decline) { (request: Baton_Routing_V1_DeclineRequest, _) in
            let core = try prepared.get()
            return try await core.decline(request.reservationID, reason: request.reason).encoded
        }
        methods.unary(Baton_Routing_V1_Router.Method.release) {
            (request: Baton_Routing_V1_ReleaseRequest, _) -> Baton_Routing_V1_ReservationReply in
            let core = try prepared.get()
            var reply = Baton_Routing_V1_ReservationReply()
            reply.reservation = try await core.release(
                request.reservationID,
                outcome: request.outcome,
                greetedAt: request.greetedAtUnixMs
            )
            return reply
        }
        methods.unary(Baton_Routing_V1_Router.Method.updateAvailability) {
            (request: Baton_Routing_V1_UpdateAvailabilityRequest, _) -> Baton_Routing_V1_DestinationState in
            let core = try prepared.get()
            return try core.updateAvailability(request)
        }
        methods.unary(Baton_Routing_V1_Router.Method.listDestinations) {
            (_: Baton_Routing_V1_ListDestinationsRequest, _) -> Baton_Routing_V1_ListDestinationsReply in
            let core = try prepared.get()
            return core.list()
        }
        methods.unary(Baton_Routing_V1_Router.Method.explain) {
            (request: Baton_Routing_V1_ExplainRequest, _) -> Baton_Routing_V1_ExplainReply in
            let core = try prepared.get()
            return try await core.explain(request.handoffID)
        }
        methods.unary(Baton_Routing_V1_Router.Method.reload) {
            (_: Baton_Routing_V1_ReloadRequest, _) -> Baton_Routing_V1_ReloadReply in
            let core = try prepared.get()
            var reply = Baton_Routing_V1_ReloadReply()
            reply.problems = core.reload().map(RouterCore.problem)
            reply.destinations = UInt32(core.configuration.destinations.count)
            return reply
        }
        return methods
    }
}
