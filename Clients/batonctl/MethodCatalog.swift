import BatonProto
import BatonRPC
import SwiftProtobuf

/// The methods batonctl can call, by process: every process serves Health; each adds its own services.
///
/// Baton's servers have no reflection service, so the request and reply types come from the descriptions that
/// protoc-gen-baton generates from `protos/` and that are compiled into batonctl: a method added to a service's
/// `.proto` is callable here once the code is regenerated. Only a new service needs a line below.
enum MethodCatalog {
    /// The services each process serves besides Health.
    static let services: [String: [RPCServiceInfo]] = [
        "supervisor": [Baton_Supervisor_V1_Supervisor.info],
        "gate-evaluator": [Baton_Gates_V1_GateEvaluator.info],
        "router": [Baton_Routing_V1_Router.info],
        "metrics-collector": [Baton_Metrics_V1_MetricsCollector.info],
        "context-assembler": [Baton_Context_V1_ContextAssembler.info],
    ]

    /// The methods `process` serves; every Baton process serves at least Health.
    static func methods(of process: String) -> [RPCMethodInfo] {
        Grpc_Health_V1_Health.info.methods + (self.services[process] ?? []).flatMap(\.methods)
    }

    /// What `method`'s request holds, in words, from the generated descriptions.
    static func describe(_ method: RPCMethodInfo, of process: String) -> String {
        let services = [Grpc_Health_V1_Health.info] + (self.services[process] ?? [])
        let request = services.first { $0.name == method.serviceName }?.requests[method.name]
        return self.signature(method) + "\n\n" + (request ?? "\(method.requestType.protoMessageName): no description")
    }

    /// `baton.routing.v1.Router.Route(baton.routing.v1.RouteRequest) returns (baton.routing.v1.RouteReply)`.
    static func signature(_ method: RPCMethodInfo) -> String {
        let stream = method.kind == .serverStreaming ? "stream " : ""
        return "\(method.dottedName)(\(method.requestType.protoMessageName)) returns "
            + "(\(stream)\(method.responseType.protoMessageName))"
    }

    /// The method of `process` that `name` names: the full path, `Service/Method`, `Service.Method`, or just
    /// `Method` when that is unambiguous.
    static func find(_ name: String, of process: String) -> RPCMethodInfo? {
        let methods = self.methods(of: process)
        let normalized = name.hasPrefix("/") ? name : "/" + name
        if let exact = methods.first(where: { $0.path == normalized || $0.dottedName == name }) {
            return exact
        }
        let suffix = methods.filter { $0.path.hasSuffix("." + name) || $0.name == name }
        return suffix.count == 1 ? suffix[0] : nil
    }
}

extension RPCMethodInfo {
    /// `grpc.health.v1.Health.Check`, as grpcurl writes it.
    var dottedName: String {
        self.serviceName + "." + self.name
    }
}
