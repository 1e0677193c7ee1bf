import BatonProto
import BatonRPC
import BatonRuntime
import Logging

/// `baton.metrics.v1.MetricsCollector`, answered by a ``MetricsCore`` once it is open.
struct MetricsAPI: Sendable {
    let prepared: Prepared<MetricsCore>

    var methods: RPCMethods {
        var methods = RPCMethods()
        let prepared = self.prepared
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.record) {
            (request: Baton_Metrics_V1_RecordRequest, context) -> Baton_Metrics_V1_RecordReply in
            let core = try prepared.get()
            guard request.hasEvent else {
                throw RPCError.invalidArgument("event is missing; expected the event to record")
            }
            if let problem = core.problem(in: request.event, at: "event", now: core.now()) {
                throw RPCError.invalidArgument(problem)
            }
            return try await Self.stored(context) { try await core.record([request.event]) }
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.recordBatch) {
            (request: Baton_Metrics_V1_RecordBatchRequest, context) -> Baton_Metrics_V1_RecordReply in
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
            return try await Self.stored(context) { try await core.record(request.events) }
        }
        // Summary, ListHandoffs and Export compute over every handoff in memory (Summary takes about 90 ms over a
        // million events): on the concurrency pool, so that they never delay a Record on the same loop.
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.summary, on: .concurrencyPool) {
            (request: Baton_Metrics_V1_SummaryRequest, _) -> Baton_Metrics_V1_SummaryReply in
            let core = try prepared.get()
            for (index, groupBy) in request.groupBy.enumerated() where MetricsCore.key(groupBy) == nil {
                throw RPCError.invalidArgument(
                    "group_by[\(index)] is \(groupBy.rawValue); expected GROUP_BY_WORKFLOW, GATE, CATEGORY, DESTINATION or DESTINATION_KIND"
                )
            }
            return try await core.summary(request)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.listHandoffs, on: .concurrencyPool) {
            (request: Baton_Metrics_V1_ListHandoffsRequest, _) -> Baton_Metrics_V1_ListHandoffsReply in
            let core = try prepared.get()
            if case .UNRECOGNIZED(let value) = request.classification {
                throw RPCError.invalidArgument("classification is \(value); expected IN_PROGRESS, HANDOFF or FAILOVER")
            }
            if case .UNRECOGNIZED(let value) = request.reason {
                throw RPCError.invalidArgument("reason is \(value); expected a FailoverReason")
            }
            return try await core.list(request)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.getHandoff) {
            (request: Baton_Metrics_V1_GetHandoffRequest, _) -> Baton_Metrics_V1_Handoff in
            let core = try prepared.get()
            guard !request.handoffID.isEmpty else {
                throw RPCError.invalidArgument("handoff_id is empty; expected the handoff's id")
            }
            return try await core.handoff(request.handoffID)
        }
        methods.unary(Baton_Metrics_V1_MetricsCollector.Method.export, on: .concurrencyPool) {
            (_: Baton_Metrics_V1_ExportRequest, _) -> Baton_Metrics_V1_ExportReply in
            let core = try prepared.get()
            var reply = Baton_Metrics_V1_ExportReply()
            reply.text = Prometheus.text(try await core.figures())
            reply.contentType = Prometheus.contentType
            return reply
        }
        return methods
    }

    /// Runs a write. The one place store errors become a status: a store that fails is UNAVAILABLE (nothing was
    /// stored: the transaction rolled back), so that the caller retries with the same event ids; the store's own
    /// message is logged, never sent to the client.
    private static func stored(
        _ context: RPCContext,
        _ write: () async throws -> Baton_Metrics_V1_RecordReply
    ) async throws -> Baton_Metrics_V1_RecordReply {
        do {
            return try await write()
        } catch {
            context.logger.error("storing events failed", metadata: ["baton.error": "\(error)"])
            throw RPCError.unavailable("the events could not be stored; nothing was stored, retry them")
        }
    }
}
