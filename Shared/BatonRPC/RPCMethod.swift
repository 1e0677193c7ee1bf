public import SwiftProtobuf

/// A unary method of a service, typed by its request and reply. Generated from `protos/` (one per `rpc`, in
/// `<Service>.Method`); servers register a handler for it and clients call it, so no caller types a method path.
public struct UnaryMethod<Request: Message, Response: Message>: Sendable {
    /// The full method name, `/baton.routing.v1.Router/Route`.
    public let path: String

    /// The method at `path`, which must be `/package.Service/Method`.
    public init(path: String) {
        precondition(RPCMethods.serviceName(ofMethod: path) != nil, "method '\(path)' is not /package.Service/Method")
        self.path = path
    }

    /// The method's description without its types' generic parameters.
    public var info: RPCMethodInfo {
        RPCMethodInfo(path: self.path, kind: .unary, requestType: Request.self, responseType: Response.self)
    }
}

/// A server-streaming method of a service, typed by its request and the messages of its reply stream.
public struct ServerStreamingMethod<Request: Message, Response: Message>: Sendable {
    /// The full method name, `/grpc.health.v1.Health/Watch`.
    public let path: String

    /// The method at `path`, which must be `/package.Service/Method`.
    public init(path: String) {
        precondition(RPCMethods.serviceName(ofMethod: path) != nil, "method '\(path)' is not /package.Service/Method")
        self.path = path
    }

    /// The method's description without its types' generic parameters.
    public var info: RPCMethodInfo {
        RPCMethodInfo(path: self.path, kind: .serverStreaming, requestType: Request.self, responseType: Response.self)
    }
}

/// A method as tools see it (`batonctl call`): its path, its shape and its message types.
public struct RPCMethodInfo: Sendable {
    /// Whether a method answers once or with a stream.
    public enum Kind: Sendable, Hashable {
        /// One reply, in the `END` frame.
        case unary
        /// `MESSAGE` frames, then an `END` with no payload.
        case serverStreaming
    }

    /// The full method name, `/baton.routing.v1.Router/Route`.
    public let path: String
    /// Unary or server-streaming.
    public let kind: Kind
    /// The request message's generated type.
    public let requestType: any Message.Type
    /// The reply message's generated type (of each streamed message, for a streaming method).
    public let responseType: any Message.Type

    /// `Route` for `/baton.routing.v1.Router/Route`.
    public var name: String {
        String(self.path[self.path.index(after: self.path.lastIndex(of: "/")!)...])
    }

    /// `baton.routing.v1.Router` for `/baton.routing.v1.Router/Route`.
    public var serviceName: String {
        RPCMethods.serviceName(ofMethod: self.path)!
    }
}

/// A service as tools see it: its full name and its methods, in the order of its `.proto`.
public struct RPCServiceInfo: Sendable {
    /// The service's full name, `baton.routing.v1.Router`.
    public let name: String
    /// Its methods.
    public let methods: [RPCMethodInfo]
    /// Each method's request in words, by method name: its fields by their JSON names, with their types, enum
    /// values and the `.proto`'s comments (what `batonctl call PROCESS --describe METHOD` prints).
    public let requests: [String: String]

    /// The description of the service `name` with `methods`, and their `requests` in words.
    public init(name: String, methods: [RPCMethodInfo], requests: [String: String] = [:]) {
        self.name = name
        self.methods = methods
        self.requests = requests
    }
}
