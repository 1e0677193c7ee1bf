import BatonProto
import BatonRPC
import BatonRuntime

/// `baton.metrics.v1.MetricsCollector`, answered by a ``MetricsCore`` once it is open.
struct MetricsAPI: Sendable {
    let prepared: Prepared<MetricsCore>

    var methods: RPCMethods {
        var methods = RPCMethods()
        let prepared = self.prepared
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.record) {
            (request: Baton_Metrics_V1_RecordRequest, _) -> Baton_Metrics_V1_RecordReply in
            let core = try prepared.get()
            guard request.hasEvent else {
                throw RPCError.invalidArgument("event is missing; expected the event to record")
            }
            if let problem = core.problem(in: request.event, at: "event", now: core.now()) {
                throw RPCError.invalidArgument(problem)
            }
            return try await Self.stored { try await core.record([request.event]) }
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.recordBatch) {
            (request: Baton_Metrics_V1_RecordBatchRequest, _) -> Baton_Metrics_V1_RecordReply in
            let core = try prepared.get()
            let now = core.now()
            for (index, event) in request.events.enumerated() {
                if let problem = core.problem(in: event, at: "events[\(index)]", now: now) {
                    throw RPCError.invalidArgument(problem + " (no event of this batch was stored)")
                }
            }
            guard !request.events.isEmpty else {
                return Baton_Metrics_V1_RecordReply()
            }
            return try await Self.stored { try await core.record(request.events) }
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.summary) {
            (request: Baton_Metrics_V1_SummaryRequest, _) -> Baton_Metrics_V1_SummaryReply in
            let core = try prepared.get()
            for (index, groupBy) in request.groupBy.enumerated() where MetricsCore.key(groupBy) == nil {
                throw RPCError.invalidArgument(
                    "group_by[\(index)] is \(groupBy.rawValue); expected GROUP_BY_WORKFLOW, GATE, CATEGORY, DESTINATION or DESTINATION_KIND"
                )
            }
            return core.summary(request)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.listHandoffs) {
            (request: Baton_Metrics_V1_ListHandoffsRequest, _) -> Baton_Metrics_V1_ListHandoffsReply in
            let core = try prepared.get()
            if case .UNRECOGNIZED(let value) = request.classification {
                throw RPCError.invalidArgument("classification is \(value); expected IN_PROGRESS, HANDOFF or FAILOVER")
            }
            if case .UNRECOGNIZED(let value) = request.reason {
                throw RPCError.invalidArgument("reason is \(value); expected a FailoverReason")
            }
            return core.list(request)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.getHandoff) {
            (request: Baton_Metrics_V1_GetHandoffRequest, _) -> Baton_Metrics_V1_Handoff in
            let core = try prepared.get()
            guard !request.handoffID.isEmpty else {
                throw RPCError.invalidArgument("handoff_id is empty; expected the handoff's id")
            }
            return try await core.handoff(request.handoffID)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.export) {
            (_: Baton_Metrics_V1_ExportRequest, _) -> Baton_Metrics_V1_ExportReply in
            let core = try prepared.get()
            var reply = Baton_Metrics_V1_ExportReply()
            reply.text = Prometheus.text(core.figures())
            reply.contentType = Prometheus.contentType
            return reply
        }
        return methods
    }

    /// Runs a write; a store that fails is UNAVAILABLE, so that the caller retries (with the same event ids).
    private static func stored(
        _ write: () async throws -> Baton_Metrics_V1_RecordReply
    ) async throws -> Baton_Metrics_V1_RecordReply {
        do {
            return try await write()
        } catch {
            throw RPCError(code: .unavailable, message: "the events could not be stored, retry them: \(error)")
        }
    }
}
