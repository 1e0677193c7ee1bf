public import SwiftProtobuf

/// The methods a server answers, by full name (`/baton.routing.v1.Router/Route`).
///
/// Handlers are `async throws` functions of protobuf messages: they never see frames, call ids or sockets. A
/// request that does not decode ends `INVALID_ARGUMENT` before the handler runs.
///
/// Methods are registered by their generated descriptions (``UnaryMethod``, ``ServerStreamingMethod``), so a handler's
/// types are checked against the `.proto`. A unary handler says where it runs (``Executor``): on its connection's
/// event loop, for work of microseconds, or on the concurrency pool, for anything slower, so that it never delays
/// the other calls of its loop. A streaming handler runs on the concurrency pool.
public struct RPCMethods: Sendable {
    /// Where a unary handler runs.
    public enum Executor: Sendable, Hashable {
        /// On the thread of the connection's event loop, with no thread hop: for handlers that finish in
        /// microseconds and never block. While it runs, no other call of that loop is read or answered.
        case eventLoop
        /// On Swift's concurrency pool: for handlers that compute for longer or wait on a store, at the cost of two
        /// thread hops (about 25 µs each on a 2-core machine).
        case concurrencyPool
    }

    enum Handler: Sendable {
        case unary(Executor, @Sendable (_ payload: [UInt8], RPCContext) async throws -> [UInt8])
        case serverStreaming(
            @Sendable (_ payload: [UInt8], RPCContext, _ send: @escaping @Sendable ([UInt8]) async throws -> Void)
                async throws -> Void
        )
    }

    private(set) var handlers: [String: Handler] = [:]

    /// An empty set of methods.
    public init() {}

    /// Answers `method` with one reply per request, running `handler` on `executor`.
    public mutating func unary<Request: Message, Response: Message>(
        _ method: UnaryMethod<Request, Response>,
        on executor: Executor = .eventLoop,
        _ handler: @escaping @Sendable (Request, RPCContext) async throws -> Response
    ) {
        let path = method.path
        self.register(path) {
            .unary(executor) { payload, context in
                let request = try Self.decode(Request.self, from: payload, method: path)
                return try await handler(request, context).serializedBytes()
            }
        }
    }

    /// Answers `method` with a reply the handler has already encoded: the binary protobuf form of `Response`. For a
    /// handler that encodes its reply anyway (to store it, say), so that it is not encoded twice.
    public mutating func unaryEncoded<Request: Message, Response: Message>(
        _ method: UnaryMethod<Request, Response>,
        on executor: Executor = .eventLoop,
        _ handler: @escaping @Sendable (Request, RPCContext) async throws -> [UInt8]
    ) {
        let path = method.path
        self.register(path) {
            .unary(executor) { payload, context in
                try await handler(Self.decode(Request.self, from: payload, method: path), context)
            }
        }
    }

    /// Answers `method` with a stream of replies, written through the ``RPCStreamWriter`` until the handler returns.
    public mutating func serverStreaming<Request: Message, Response: Message>(
        _ method: ServerStreamingMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, RPCContext, RPCStreamWriter<Response>) async throws -> Void
    ) {
        let path = method.path
        self.register(path) {
            .serverStreaming { payload, context, send in
                let request = try Self.decode(Request.self, from: payload, method: path)
                let writer = RPCStreamWriter<Response>(sendBytes: send, serialize: { try $0.serializedBytes() })
                try await handler(request, context, writer)
            }
        }
    }

    /// Whether a handler is registered for every method of `service`.
    public func serves(_ service: RPCServiceInfo) -> Bool {
        service.methods.allSatisfy { self.handlers[$0.path] != nil }
    }

    /// Adds every method of `other`; a method registered twice is a programming error.
    public mutating func merge(_ other: RPCMethods) {
        for (method, handler) in other.handlers {
            self.register(method) { handler }
        }
    }

    private mutating func register(_ method: String, _ handler: () -> Handler) {
        precondition(Self.serviceName(ofMethod: method) != nil, "method '\(method)' is not /package.Service/Method")
        precondition(self.handlers[method] == nil, "method '\(method)' is registered twice")
        self.handlers[method] = handler()
    }

    /// `grpc.health.v1.Health` for `/grpc.health.v1.Health/Check`, or nil when the name is not of that shape.
    static func serviceName(ofMethod method: String) -> String? {
        let parts = method.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
            return nil
        }
        return String(parts[1])
    }

    private static func decode<M: Message>(_ type: M.Type, from payload: [UInt8], method: String) throws -> M {
        do {
            return try M(serializedBytes: payload)
        } catch {
            throw RPCError.invalidArgument(
                "payload of \(method) does not decode as \(M.protoMessageName): \(error)"
            )
        }
    }
}
