public import Logging
public import NIOCore
public import NIOPosix
public import SwiftProtobuf
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A client for one Baton process's socket: one connection, shared by any number of concurrent calls.
///
/// It connects on first use and, after the server restarts, reconnects by itself with capped back-off; the same
/// client object keeps working. A call made while the server is down fails at once with `UNAVAILABLE`, unless its
/// options ask to wait for the server (up to its deadline). Cancelling the calling task sends `CANCEL`.
public final class RPCClient: Sendable {
    /// The socket this client talks to.
    public let socketPath: String
    /// The event loop that owns the connection. Callers that run on its executor (``taskExecutor``) save a thread
    /// hop per call.
    public let eventLoop: any EventLoop
    private let core: NIOLoopBoundBox<ClientCore>
    private let nextCallID = Atomic<UInt64>(0)

    /// A client for the socket at `socketPath`. Nothing connects until the first call.
    public init(
        socketPath: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "baton.rpc.client")
    ) {
        let eventLoop = eventLoopGroup.next()
        self.socketPath = socketPath
        self.eventLoop = eventLoop
        self.core = NIOLoopBoundBox.makeBoxSendingValue(
            ClientCore(socketPath: socketPath, eventLoop: eventLoop, logger: logger),
            eventLoop: eventLoop
        )
    }

    deinit {
        let core = self.core
        self.eventLoop.execute { core.value.close() }
    }

    /// A task executor on the client's event loop, for callers that want their calls to cost no thread hop.
    public var taskExecutor: EventLoopTaskExecutor {
        EventLoopTaskExecutor(eventLoop: self.eventLoop)
    }

    /// Calls a unary `method` and returns its reply; throws ``RPCError`` when the call does not end `OK`.
    public func unary<Request: Message, Response: Message>(
        _ method: UnaryMethod<Request, Response>,
        _ request: Request,
        options: CallOptions = CallOptions()
    ) async throws -> Response {
        try await self.unary(method.path, request, as: Response.self, options: options)
    }

    /// Calls a server-streaming `method`; the returned sequence yields each reply and throws ``RPCError`` when the
    /// call ends other than `OK`. Ending the iteration early (or cancelling the iterating task) sends `CANCEL`.
    public func serverStream<Request: Message, Response: Message>(
        _ method: ServerStreamingMethod<Request, Response>,
        _ request: Request,
        options: CallOptions = CallOptions()
    ) throws -> RPCResponseStream<Response> {
        try self.serverStream(method.path, request, as: Response.self, options: options)
    }

    func unary<Request: Message, Response: Message>(
        _ method: String,
        _ request: Request,
        as response: Response.Type,
        options: CallOptions
    ) async throws -> Response {
        let outgoing = try self.requestFrame(method, request, options: options)
        let cancellation = CallCancellation()
        let core = self.core
        let payload = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                self.eventLoop.runOnLoop {
                    core.value.start(
                        outgoing,
                        waiter: .unary(continuation),
                        options: options,
                        cancellation: cancellation
                    )
                }
            }
        } onCancel: {
            cancellation.cancel()
            self.eventLoop.runOnLoop {
                core.value.abandon(outgoing.callID, with: RPCError.cancelled("the calling task was cancelled"))
            }
        }
        return try Self.decode(Response.self, from: payload, method: method)
    }

    func serverStream<Request: Message, Response: Message>(
        _ method: String,
        _ request: Request,
        as response: Response.Type,
        options: CallOptions
    ) throws -> RPCResponseStream<Response> {
        let outgoing = try self.requestFrame(method, request, options: options)
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        let cancellation = CallCancellation()
        let core = self.core
        let eventLoop = self.eventLoop
        let giveUp: @Sendable () -> Void = {
            cancellation.cancel()
            eventLoop.runOnLoop {
                core.value.abandon(outgoing.callID, with: RPCError.cancelled("the stream's consumer went away"))
            }
        }
        // The iterating task was cancelled.
        continuation.onTermination = { termination in
            if case .cancelled = termination {
                giveUp()
            }
        }
        self.eventLoop.runOnLoop {
            core.value.start(outgoing, waiter: .stream(continuation), options: options, cancellation: cancellation)
        }
        // Nobody holds the stream or an iterator any more (a `break` out of `for try await`, say). Abandoning a call
        // that has already ended does nothing.
        return RPCResponseStream(payloads: stream, method: method, lifetime: CallLifetime(end: giveUp))
    }

    /// Closes the connection; open calls fail with `UNAVAILABLE`, and so do later ones.
    public func close() async {
        let core = self.core
        try? await self.eventLoop.submit { core.value.close() }.get()
    }

    private func requestFrame<Request: Message>(
        _ method: String,
        _ request: Request,
        options: CallOptions
    ) throws -> OutgoingRequest {
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = self.nextCallID.add(1, ordering: .relaxed).newValue
        frame.kind = .request
        frame.method = method
        frame.timeoutMs = options.timeoutMilliseconds
        frame.metadata = options.metadata
        frame.payload = try request.serializedBytes()
        do {
            return OutgoingRequest(callID: frame.callID, body: try frame.checkedBody())
        } catch var error as RPCError {
            error.message = "the request to \(method) is too big: \(error.message)"
            throw error
        }
    }

    static func decode<Response: Message>(_ type: Response.Type, from payload: Data, method: String) throws -> Response
    {
        do {
            return try Response(serializedBytes: payload)
        } catch {
            throw RPCError(
                code: .internal,
                message: "reply of \(method) does not decode as \(Response.protoMessageName): \(error)"
            )
        }
    }
}

/// The replies of a server-streaming call, decoded.
public struct RPCResponseStream<Response: Message>: AsyncSequence, Sendable {
    public typealias Element = Response

    let payloads: AsyncThrowingStream<Data, any Error>
    let method: String
    let lifetime: CallLifetime

    public struct AsyncIterator: AsyncIteratorProtocol {
        var payloads: AsyncThrowingStream<Data, any Error>.AsyncIterator
        let method: String
        let lifetime: CallLifetime

        public mutating func next() async throws -> Response? {
            guard let payload = try await self.payloads.next() else {
                return nil
            }
            return try RPCClient.decode(Response.self, from: payload, method: self.method)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(payloads: self.payloads.makeAsyncIterator(), method: self.method, lifetime: self.lifetime)
    }
}

/// Ends a streaming call when the last copy of its stream or iterator goes away.
final class CallLifetime: Sendable {
    private let end: @Sendable () -> Void

    init(end: @escaping @Sendable () -> Void) {
        self.end = end
    }

    deinit {
        self.end()
    }
}

/// Whether a call's task was cancelled, readable from the event loop before the call is registered there.
final class CallCancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    var isCancelled: Bool {
        self.flag.load(ordering: .acquiring)
    }

    func cancel() {
        self.flag.store(true, ordering: .releasing)
    }
}
