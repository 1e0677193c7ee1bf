import Logging
import NIOCore
import NIOPosix

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A REQUEST frame, serialized once when the call is made, with its call id.
struct OutgoingRequest: Sendable {
    let callID: UInt64
    let body: [UInt8]
}

/// The client's state: its calls and its connection. Lives on the client's event loop; every method must be
/// called there.
///
/// Draining (protocol version 1.1): when the server sends GOAWAY, the connection stops taking calls and stays open
/// only for the calls already on it; the next call opens a new connection. A call that the draining server
/// answered `UNAVAILABLE`, or that was still unanswered when it closed the connection, did not run, and is sent
/// once more on the new connection (with the same deadline and the same wait-for-ready).
final class ClientCore {
    enum Waiter {
        case unary(CheckedContinuation<Data, any Error>)
        case stream(AsyncThrowingStream<Data, any Error>.Continuation)
    }

    private struct Call {
        var waiter: Waiter
        var request: OutgoingRequest
        var waitForReady: Bool
        /// The connection the request was written to, while it is open there.
        var sentOn: ClientConnectionHandler?
        /// Sent again after a draining server did not run it: a call is retried at most once.
        var retried = false
        /// A stream has had a MESSAGE: it ran, and is never sent again.
        var streamed = false
        var deadline: Scheduled<Void>?

        var sent: Bool { self.sentOn != nil }
    }

    private enum Connection {
        case idle
        case connecting
        case connected(ClientConnectionHandler)
    }

    static let initialBackoff = TimeAmount.milliseconds(20)
    static let maxBackoff = TimeAmount.seconds(2)

    let socketPath: String
    let eventLoop: any EventLoop
    let logger: Logger
    private var calls: [UInt64: Call] = [:]
    /// Calls not yet written to the connection, oldest first; an id whose call has gone is skipped.
    private var unsent = CircularBuffer<UInt64>()
    /// Calls written and not yet ended: never more than docs/PROTOCOL.md's open-calls limit, so that a client with more
    /// concurrent calls queues them here instead of getting RESOURCE_EXHAUSTED from the server.
    private var sentCount = 0
    private var connection = Connection.idle
    /// Connections that sent GOAWAY and still carry calls; each closes when its last call ends.
    private var draining: [ObjectIdentifier: ClientConnectionHandler] = [:]
    private var backoff = ClientCore.initialBackoff
    private var retry: Scheduled<Void>?
    private var lastConnectError = ""
    private var wasConnected = false
    private var closed = false

    init(socketPath: String, eventLoop: any EventLoop, logger: Logger) {
        self.socketPath = socketPath
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// Opens a call; `cancellation` is checked here because the caller may be cancelled before this runs.
    func start(
        _ request: OutgoingRequest,
        waiter: Waiter,
        options: CallOptions,
        cancellation: CallCancellation
    ) {
        let id = request.callID
        guard !cancellation.isCancelled else {
            return Self.fail(waiter, with: RPCError.cancelled("the call was cancelled before it started"))
        }
        guard !self.closed else {
            return Self.fail(waiter, with: RPCError.unavailable("the client for '\(self.socketPath)' is closed"))
        }
        var call = Call(waiter: waiter, request: request, waitForReady: options.waitForReady)
        if let timeout = options.timeout {
            let this = NIOLoopBound(self, eventLoop: self.eventLoop)
            call.deadline = self.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                this.value.abandon(id, with: this.value.deadlineError(timeout))
            }
        }
        self.calls[id] = call
        self.unsent.append(id)
        switch self.connection {
        case .connected:
            self.sendWaitingCalls()
        case .connecting:
            break  // sent when the attempt succeeds
        case .idle:
            self.connect()
        }
    }

    /// Removes call `id`, keeping the count of calls on the wire true; a draining connection whose last call this
    /// was is closed.
    private func remove(_ id: UInt64) -> Call? {
        guard let call = self.calls.removeValue(forKey: id) else {
            return nil
        }
        if let connection = call.sentOn {
            self.sentCount -= 1
            self.closeIfDrained(connection)
        }
        return call
    }

    /// Closes `connection` if it is draining and no call is open on it any more.
    private func closeIfDrained(_ connection: ClientConnectionHandler) {
        guard self.draining[ObjectIdentifier(connection)] != nil,
            !self.calls.values.contains(where: { $0.sentOn === connection })
        else {
            return
        }
        connection.close()
    }

    /// Puts call `id`, which a draining server did not run, back at the front of the queue to be sent once more;
    /// false when it was retried already.
    private func requeueOnce(_ id: UInt64) -> Bool {
        guard let call = self.calls[id], !call.retried, !call.streamed else {
            return false
        }
        if call.sent {
            self.sentCount -= 1
        }
        self.calls[id]?.sentOn = nil
        self.calls[id]?.retried = true
        self.unsent.prepend(id)
        return true
    }

    /// Gives up on call `id`: tells the server with CANCEL if it has the call, and fails the caller with `error`.
    func abandon(_ id: UInt64, with error: RPCError) {
        guard let call = self.remove(id) else {
            return
        }
        call.deadline?.cancel()
        if let handler = call.sentOn {
            var cancel = Baton_Rpc_V1_Frame()
            cancel.callID = id
            cancel.kind = .cancel
            if let body = try? cancel.checkedBody() {
                handler.write(body)
            }
        }
        Self.fail(call.waiter, with: error)
        if call.sent {
            self.sendWaitingCalls()
        }
    }

    /// Closes the connection and fails every open call; later calls fail with UNAVAILABLE.
    func close() {
        self.closed = true
        self.retry?.cancel()
        self.failAll(RPCError.unavailable("the client for '\(self.socketPath)' was closed"))
        if case .connected(let handler) = self.connection {
            handler.close()
        }
        for handler in self.draining.values {
            handler.close()
        }
        self.connection = .idle
    }

    // MARK: - Connection

    private func connect() {
        self.connection = .connecting
        self.retry?.cancel()
        self.retry = nil
        let this = NIOLoopBound(self, eventLoop: self.eventLoop)
        ClientBootstrap(group: self.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ClientConnectionHandler(core: this.value)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(unixDomainSocketPath: self.socketPath)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.pipeline.handler(type: ClientConnectionHandler.self).whenSuccess { handler in
                        this.value.connected(handler)
                    }
                case .failure(let error):
                    this.value.connectFailed(error)
                }
            }
    }

    private func connected(_ handler: ClientConnectionHandler) {
        guard !self.closed else {
            return handler.close()
        }
        guard handler.context != nil else {
            // The server closed the connection before it could be used: a draining server, or one that refused
            // this process's user (the server logs which).
            return self.connectFailed(ClosedAtOnce())
        }
        if self.wasConnected {
            self.logger.info("reconnected", metadata: ["baton.socket": "\(self.socketPath)"])
        }
        self.connection = .connected(handler)
        self.wasConnected = true
        self.backoff = Self.initialBackoff
        self.sendWaitingCalls()
    }

    private func connectFailed(_ error: any Error) {
        self.connection = .idle
        self.lastConnectError = Self.describe(error)
        self.logger.debug(
            "cannot connect",
            metadata: ["baton.socket": "\(self.socketPath)", "baton.error": "\(self.lastConnectError)"]
        )
        for (id, call) in self.calls where !call.sent && !call.waitForReady {
            self.abandon(
                id,
                with: RPCError.unavailable("cannot connect to '\(self.socketPath)': \(self.lastConnectError)")
            )
        }
        self.scheduleReconnect()
    }

    /// Called by the handler when its channel closes: in-flight calls fail, and the client reconnects by itself.
    ///
    /// A draining connection closes once its calls have ended; a call still open on it then was never read by the
    /// server (it closes only with no call open, or after ending them all at its grace period), so it is sent again.
    func connectionLost(_ handler: ClientConnectionHandler) {
        if self.draining.removeValue(forKey: ObjectIdentifier(handler)) != nil {
            for (id, call) in self.calls where call.sentOn === handler && !self.requeueOnce(id) {
                self.abandon(id, with: RPCError.unavailable("the draining server closed the connection"))
            }
            return self.resumeAfterDrain()
        }
        guard case .connected(let current) = self.connection, current === handler else {
            return
        }
        self.connection = .idle
        for (id, call) in self.calls where call.sentOn === handler {
            self.abandon(id, with: RPCError.unavailable("the connection to '\(self.socketPath)' was lost"))
        }
        guard !self.closed else {
            return
        }
        self.logger.info("connection lost", metadata: ["baton.socket": "\(self.socketPath)"])
        if self.calls.isEmpty {
            self.scheduleReconnect()
        } else {
            self.connect()  // calls whose requests never left wait for a new connection
        }
    }

    /// Tries again after the back-off, doubling it up to ``maxBackoff``, while the client is open and either calls
    /// wait for the server or the client was connected before (so it comes back by itself after a restart).
    private func scheduleReconnect() {
        guard !self.closed, self.retry == nil, self.wasConnected || !self.calls.isEmpty else {
            return
        }
        let this = NIOLoopBound(self, eventLoop: self.eventLoop)
        let delay = self.backoff
        self.backoff = min(self.backoff * 2, Self.maxBackoff)
        self.retry = self.eventLoop.scheduleTask(in: delay) {
            let core = this.value
            core.retry = nil
            if case .idle = core.connection, !core.closed {
                core.connect()
            }
        }
    }

    /// Writes waiting calls' REQUESTs, oldest first, while the connection is up and under the open-calls limit.
    ///
    /// If a write fails, the server never saw the request (a Unix socket refuses a write once the peer has
    /// closed), so the call goes back to the front of the queue for the next connection.
    private func sendWaitingCalls() {
        guard case .connected(let handler) = self.connection else {
            return
        }
        while self.sentCount < Wire.maxOpenCalls, let id = self.unsent.popFirst() {
            guard let request = self.calls[id]?.request, self.calls[id]?.sent == false else {
                continue
            }
            self.calls[id]?.sentOn = handler
            self.sentCount += 1
            let written = self.eventLoop.makePromise(of: Void.self)
            let this = NIOLoopBound(self, eventLoop: self.eventLoop)
            let connection = ObjectIdentifier(handler)
            written.futureResult.whenFailure { _ in
                let core = this.value
                guard let sentOn = core.calls[id]?.sentOn, ObjectIdentifier(sentOn) == connection else {
                    return
                }
                core.calls[id]?.sentOn = nil
                core.sentCount -= 1
                core.unsent.prepend(id)
            }
            handler.write(request.body, promise: written)
        }
    }

    // MARK: - Replies

    /// Handles a frame from the server on `handler`; throws a violation when the server broke the protocol.
    func received(_ frame: Baton_Rpc_V1_Frame, on handler: ClientConnectionHandler) throws(ProtocolViolation) {
        switch frame.kind {
        case .goaway:
            guard frame.callID == 0 else {
                throw ProtocolViolation("server sent GOAWAY with call_id \(frame.callID) (expected 0)")
            }
            self.serverDraining(handler)
        case .message:
            guard let call = self.calls[frame.callID] else {
                return  // a call this client no longer tracks
            }
            guard case .stream(let continuation) = call.waiter else {
                throw ProtocolViolation("server sent a MESSAGE for unary call \(frame.callID)")
            }
            self.calls[frame.callID]?.streamed = true
            continuation.yield(frame.payload)
        case .end:
            let code = RPCStatusCode(rawValue: frame.status.code)
            if code == .unavailable && handler.sentGoaway && self.requeueOnce(frame.callID) {
                self.closeIfDrained(handler)
                return self.resumeAfterDrain()
            }
            guard let call = self.remove(frame.callID) else {
                return
            }
            call.deadline?.cancel()
            defer { self.sendWaitingCalls() }
            guard code == .ok else {
                return Self.fail(call.waiter, with: RPCError(code: code, message: frame.status.message))
            }
            switch call.waiter {
            case .unary(let continuation):
                continuation.resume(returning: frame.payload)
            case .stream(let continuation):
                continuation.finish()
            }
        case .request, .cancel, .unspecified, .UNRECOGNIZED:
            throw ProtocolViolation("server sent a frame of kind \(frame.kind.rawValue) for call \(frame.callID)")
        }
    }

    /// The server on `handler` is draining: no new call goes there, and the next one opens a new connection.
    private func serverDraining(_ handler: ClientConnectionHandler) {
        guard !handler.sentGoaway else {
            return
        }
        handler.sentGoaway = true
        self.logger.debug("server is draining", metadata: ["baton.socket": "\(self.socketPath)"])
        if case .connected(let current) = self.connection, current === handler {
            self.connection = .idle
        }
        self.draining[ObjectIdentifier(handler)] = handler
        self.closeIfDrained(handler)
        self.resumeAfterDrain()
    }

    /// Sends the calls that wait, on the connection that replaced a draining one: opens it when there is none yet.
    private func resumeAfterDrain() {
        guard !self.closed, !self.unsent.isEmpty else {
            return
        }
        switch self.connection {
        case .idle:
            self.connect()
        case .connecting:
            break  // sent when the attempt succeeds
        case .connected:
            self.sendWaitingCalls()
        }
    }

    private func failAll(_ error: RPCError) {
        for id in Array(self.calls.keys) {
            self.abandon(id, with: error)
        }
    }

    private func deadlineError(_ timeout: Duration) -> RPCError {
        if case .connected = self.connection {
            return RPCError.deadlineExceeded("the deadline of \(timeout) passed before the server answered")
        }
        let reason = self.lastConnectError.isEmpty ? "" : ": \(self.lastConnectError)"
        return RPCError.deadlineExceeded(
            "the deadline of \(timeout) passed while waiting for '\(self.socketPath)'\(reason)"
        )
    }

    private static func fail(_ waiter: Waiter, with error: RPCError) {
        switch waiter {
        case .unary(let continuation):
            continuation.resume(throwing: error)
        case .stream(let continuation):
            continuation.finish(throwing: error)
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode))
        }
        return "\(error)"
    }
}

/// The server accepted the connection and closed it before any call could use it.
private struct ClosedAtOnce: Error, CustomStringConvertible {
    var description: String {
        "the server closed the connection at once (shutting down, or this user is not allowed to connect)"
    }
}

/// One connection's pipeline end: decodes the server's frames for the core and writes the client's frames.
final class ClientConnectionHandler: ChannelInboundHandler, CoalescingFrameWriter {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let core: ClientCore
    var context: ChannelHandlerContext?
    var flushes = FlushCoalescer()
    /// The server sent GOAWAY on this connection: it runs no call that reaches it from now on.
    var sentGoaway = false

    init(core: ClientCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Writes one serialized frame (its size already checked) behind its length prefix.
    func write(_ body: [UInt8], promise: EventLoopPromise<Void>? = nil) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = Baton_Rpc_V1_Frame.framedBuffer(body: body, allocator: context.channel.allocator)
        self.writeCoalesced(buffer, context: context, promise: promise)
    }

    func close() {
        self.context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.flushes.readBurstStarted()
        do {
            try self.core.received(Baton_Rpc_V1_Frame.decoding(Self.unwrapInboundIn(data)), on: self)
        } catch {
            self.errorCaught(context: context, error: error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.readBurstEnded(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        self.core.connectionLost(self)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard self.context != nil else {
            return
        }
        if error is ProtocolViolation {
            self.core.logger.warning(
                "protocol violation by the server, closing the connection",
                metadata: ["baton.socket": "\(self.core.socketPath)", "baton.reason": "\(error)"]
            )
        }
        context.close(promise: nil)
    }
}
