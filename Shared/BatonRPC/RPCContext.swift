public import Logging
public import NIOCore

/// What a handler may know about the call it serves, besides its request.
public struct RPCContext: Sendable {
    /// The full method name, `/baton.routing.v1.Router/Route`.
    public let method: String
    /// The request's metadata (`request-id`, `traceparent`, ...), as the client sent it.
    public let metadata: [String: String]
    /// When the call's deadline passes, or nil when the client set none. The handler's task is cancelled then.
    public let deadline: NIODeadline?
    /// The peer's credentials, read with `SO_PEERCRED` when it connected.
    public let peer: PeerCredentials
    /// The call's id on its connection.
    public let callID: UInt64
    let connectionLogger: Logger

    /// A logger carrying `baton.rpc.method` and `baton.rpc.call_id` (made when asked for: most calls never log).
    public var logger: Logger {
        var logger = self.connectionLogger
        logger[metadataKey: "baton.rpc.method"] = "\(self.method)"
        logger[metadataKey: "baton.rpc.call_id"] = "\(self.callID)"
        return logger
    }
}

/// Sends the messages of a server-streaming reply; the call ends when the handler returns.
public struct RPCStreamWriter<Message: Sendable>: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void
    let serialize: @Sendable (Message) throws -> [UInt8]

    /// Sends one message, waiting while the peer is slow to read. Throws when the call has ended.
    public func send(_ message: Message) async throws {
        try await self.sendBytes(try self.serialize(message))
    }
}
