import BatonProto
import SwiftProtobuf

/// The methods batonctl can call, by process: every process serves Health; each adds its own services.
///
/// Baton's servers have no reflection service, so the request and reply types come from the generated code
/// compiled into batonctl. A service that gains methods adds them here.
enum MethodCatalog {
    struct Method {
        let path: String
        let request: any Message.Type
        let reply: any Message.Type
        let streaming: Bool

        /// `Check` for `/grpc.health.v1.Health/Check`.
        var shortName: String {
            String(self.path.split(separator: "/").last ?? "")
        }

        /// `grpc.health.v1.Health.Check`, as grpcurl writes it.
        var dottedName: String {
            self.path.dropFirst().replacingOccurrences(of: "/", with: ".")
        }
    }

    static let health: [Method] = [
        Method(
            path: "/grpc.health.v1.Health/Check",
            request: Grpc_Health_V1_HealthCheckRequest.self,
            reply: Grpc_Health_V1_HealthCheckResponse.self,
            streaming: false
        ),
        Method(
            path: "/grpc.health.v1.Health/Watch",
            request: Grpc_Health_V1_HealthCheckRequest.self,
            reply: Grpc_Health_V1_HealthCheckResponse.self,
            streaming: true
        ),
    ]

    static let supervisor: [Method] = [
        Method(
            path: "/baton.supervisor.v1.Supervisor/Status",
            request: Baton_Supervisor_V1_StatusRequest.self,
            reply: Baton_Supervisor_V1_StatusReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Start",
            request: Baton_Supervisor_V1_ProcessRequest.self,
            reply: Baton_Supervisor_V1_ProcessReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Stop",
            request: Baton_Supervisor_V1_ProcessRequest.self,
            reply: Baton_Supervisor_V1_ProcessReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Restart",
            request: Baton_Supervisor_V1_ProcessRequest.self,
            reply: Baton_Supervisor_V1_ProcessReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Logs",
            request: Baton_Supervisor_V1_LogsRequest.self,
            reply: Baton_Supervisor_V1_LogLine.self,
            streaming: true
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Events",
            request: Baton_Supervisor_V1_EventsRequest.self,
            reply: Baton_Supervisor_V1_ProcessEvent.self,
            streaming: true
        ),
        Method(
            path: "/baton.supervisor.v1.Supervisor/Shutdown",
            request: Baton_Supervisor_V1_ShutdownRequest.self,
            reply: Baton_Supervisor_V1_ShutdownReply.self,
            streaming: false
        ),
    ]

    static let gates: [Method] = [
        Method(
            path: "/baton.gates.v1.GateEvaluator/Evaluate",
            request: Baton_Gates_V1_EvaluateRequest.self,
            reply: Baton_Gates_V1_EvaluateReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.gates.v1.GateEvaluator/ListWorkflows",
            request: Baton_Gates_V1_ListWorkflowsRequest.self,
            reply: Baton_Gates_V1_ListWorkflowsReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.gates.v1.GateEvaluator/GetWorkflow",
            request: Baton_Gates_V1_GetWorkflowRequest.self,
            reply: Baton_Gates_V1_GetWorkflowReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.gates.v1.GateEvaluator/ValidateWorkflow",
            request: Baton_Gates_V1_ValidateWorkflowRequest.self,
            reply: Baton_Gates_V1_ValidateWorkflowReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.gates.v1.GateEvaluator/Reload",
            request: Baton_Gates_V1_ReloadRequest.self,
            reply: Baton_Gates_V1_ReloadReply.self,
            streaming: false
        ),
    ]

    static let router: [Method] = [
        Method(
            path: "/baton.routing.v1.Router/Route",
            request: Baton_Routing_V1_RouteRequest.self,
            reply: Baton_Routing_V1_RouteReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/Accept",
            request: Baton_Routing_V1_AcceptRequest.self,
            reply: Baton_Routing_V1_ReservationReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/Decline",
            request: Baton_Routing_V1_DeclineRequest.self,
            reply: Baton_Routing_V1_RouteReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/Release",
            request: Baton_Routing_V1_ReleaseRequest.self,
            reply: Baton_Routing_V1_ReservationReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/UpdateAvailability",
            request: Baton_Routing_V1_UpdateAvailabilityRequest.self,
            reply: Baton_Routing_V1_DestinationState.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/ListDestinations",
            request: Baton_Routing_V1_ListDestinationsRequest.self,
            reply: Baton_Routing_V1_ListDestinationsReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/Explain",
            request: Baton_Routing_V1_ExplainRequest.self,
            reply: Baton_Routing_V1_ExplainReply.self,
            streaming: false
        ),
        Method(
            path: "/baton.routing.v1.Router/Reload",
            request: Baton_Routing_V1_ReloadRequest.self,
            reply: Baton_Routing_V1_ReloadReply.self,
            streaming: false
        ),
    ]

    static let metrics: [Method] = [
        ("Record", Baton_Metrics_V1_RecordRequest.self, Baton_Metrics_V1_RecordReply.self),
        ("RecordBatch", Baton_Metrics_V1_RecordBatchRequest.self, Baton_Metrics_V1_RecordReply.self),
        ("Summary", Baton_Metrics_V1_SummaryRequest.self, Baton_Metrics_V1_SummaryReply.self),
        ("ListHandoffs", Baton_Metrics_V1_ListHandoffsRequest.self, Baton_Metrics_V1_ListHandoffsReply.self),
        ("GetHandoff", Baton_Metrics_V1_GetHandoffRequest.self, Baton_Metrics_V1_Handoff.self),
        ("Export", Baton_Metrics_V1_ExportRequest.self, Baton_Metrics_V1_ExportReply.self),
    ].map { name, request, reply in
        Method(path: "/baton.metrics.v1.MetricsCollector/\(name)", request: request, reply: reply, streaming: false)
    }

    /// The methods `process` serves; every Baton process serves at least Health.
    static func methods(of process: String) -> [Method] {
        switch process {
        case "supervisor": self.health + self.supervisor
        case "gate-evaluator": self.health + self.gates
        case "router": self.health + self.router
        case "metrics-collector": self.health + self.metrics
        default: self.health
        }
    }

    /// The method of `process` that `name` names: the full path, `Service/Method`, `Service.Method`, or just
    /// `Method` when that is unambiguous.
    static func find(_ name: String, of process: String) -> Method? {
        let methods = self.methods(of: process)
        let normalized = name.hasPrefix("/") ? name : "/" + name
        if let exact = methods.first(where: { $0.path == normalized || $0.dottedName == name }) {
            return exact
        }
        let suffix = methods.filter { $0.path.hasSuffix("." + name) || $0.shortName == name }
        return suffix.count == 1 ? suffix[0] : nil
    }
}

extension Substring {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        self.split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
