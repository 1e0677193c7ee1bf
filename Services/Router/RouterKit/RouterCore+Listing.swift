import BatonProto
import BatonRPC
import Foundation
import Synchronization

/// What the router reports and is told of its destinations: availability, the list, and explanations.
extension RouterCore {
    func updateAvailability(
        _ request: Baton_Routing_V1_UpdateAvailabilityRequest
    ) throws -> Baton_Routing_V1_DestinationState {
        guard !request.destinationID.isEmpty else {
            throw RPCError.invalidArgument("destination_id is empty; expected a destination of destinations.yaml")
        }
        for (name, value) in [
            ("agents_ready", request.agentsReady), ("agents_busy", request.agentsBusy),
            ("queue_length", request.queueLength),
        ] where value < 0 {
            throw RPCError.invalidArgument("\(name) is \(value); expected a count of zero or more")
        }
        let now = self.now()
        let at = request.atUnixMs == 0 ? now : Self.date(request.atUnixMs)
        return try self.state.withLock { state throws(RPCError) in
            guard let destination = state.configuration.destinations.first(where: { $0.id == request.destinationID })
            else {
                throw RPCError.notFound(
                    "destination_id '\(request.destinationID)' is not a destination; known: "
                        + state.configuration.destinations.map(\.id).joined(separator: ", ")
                )
            }
            let availability = Availability(
                agentsReady: Int(request.agentsReady),
                agentsBusy: Int(request.agentsBusy),
                queueLength: Int(request.queueLength),
                at: at
            )
            state.ledger.report(availability, for: request.destinationID)
            return Self.describe(destination, in: state, now: now)
        }
    }

    func list() -> Baton_Routing_V1_ListDestinationsReply {
        let now = self.now()
        return self.state.withLock { state in
            var reply = Baton_Routing_V1_ListDestinationsReply()
            reply.destinations = state.configuration.destinations.map { Self.describe($0, in: state, now: now) }
            reply.source = state.source
            reply.problems = state.problems.map(Self.problem)
            reply.lastValidCopy = state.lastValidCopy ?? ""
            return reply
        }
    }

    func explain(_ handoffID: String) async throws -> Baton_Routing_V1_ExplainReply {
        guard !handoffID.isEmpty else {
            throw RPCError.invalidArgument("handoff_id is empty; expected the id a Route call carried")
        }
        let reply = try await self.read("the decisions for handoff \(handoffID)") { db in
            try RouterStore.explain(handoffID, in: db)
        }
        guard !reply.decisions.isEmpty else {
            throw RPCError.notFound("no decision for handoff '\(handoffID)'")
        }
        return reply
    }

    private static func describe(
        _ destination: Destination,
        in state: State,
        now: Date
    ) -> Baton_Routing_V1_DestinationState {
        let live = state.ledger.live[destination.id] ?? LiveState()
        let prediction = Prediction(destination: destination, live: live, policy: state.configuration.policy, now: now)
        var message = Baton_Routing_V1_DestinationState()
        message.id = destination.id
        message.kind = destination.kind == .inHouse ? .inHouse : .partner
        message.skills = destination.skills.sorted()
        message.certifications = destination.certifications.sorted()
        message.transferAddress = destination.transfer
        message.agents = UInt32(destination.agents)
        message.averageHandleS = destination.averageHandleSeconds
        message.costPerMin = destination.costPerMinute
        message.context = destination.context.rawValue
        message.timeZone = destination.hours.timeZone.identifier
        message.openNow = destination.hours.isOpen(at: now)
        if !message.openNow, let next = destination.hours.nextOpening(after: now) {
            message.nextOpenAtUnixMs = Self.milliseconds(next)
        }
        if let availability = live.availability {
            message.availability.agentsReady = Int32(availability.agentsReady)
            message.availability.agentsBusy = Int32(availability.agentsBusy)
            message.availability.queueLength = Int32(availability.queueLength)
            message.availability.atUnixMs = Self.milliseconds(availability.at)
            message.availability.stale = prediction.stale
        }
        message.heldReservations = UInt32(live.held)
        message.acceptedReservations = UInt32(live.accepted.count)
        message.freeAgents = Int32(prediction.freeAgents)
        message.predictedLiveHumanMs = prediction.milliseconds
        message.ringAndGreetMs = UInt32((live.ringAndGreet.seconds(state.configuration.policy) * 1000).rounded())
        message.ringAndGreetObservations = UInt32(live.ringAndGreet.observed.count)
        message.reservations = state.ledger.open.values
            .filter { $0.destinationID == destination.id }
            .sorted { $0.createdAt < $1.createdAt }
            .map { Self.message($0, endedAt: nil, detail: "") }
        return message
    }
}
