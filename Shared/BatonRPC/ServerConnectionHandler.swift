import Logging
import NIOCore
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Serves the calls of one connection (docs/PROTOCOL.md, "Calls"): multiplexing, limits, deadlines, CANCEL, errors.
///
/// Everything here runs on the connection's event loop. A unary handler registered for the loop runs in a task that
/// prefers that loop's executor, so a call costs no thread hop unless its handler makes one; one registered for the
/// concurrency pool, and every streaming handler, runs there (see `openCall`). The tasks are tracked in `calls` and cancelled when their call or the
/// connection ends, so none outlives the server.
final class ServerConnectionHandler: ChannelInboundHandler, CoalescingFrameWriter {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Call {
        let method: String
        var task: Task<Void, Never>?
        var deadline: Scheduled<Void>?
        var writableWaiter: CheckedContinuation<Void, any Error>?
    }

    private let methods: RPCMethods
    private let peer: PeerCredentials
    private let executor: EventLoopTaskExecutor
    private var logger: Logger
    private var calls: [UInt64: Call] = [:]
    var context: ChannelHandlerContext?
    var flushes = FlushCoalescer()
    private var draining = false
    private var closed = false

    init(methods: RPCMethods, peer: PeerCredentials, eventLoop: any EventLoop, logger: Logger) {
        self.methods = methods
        self.peer = peer
        self.executor = EventLoopTaskExecutor(eventLoop: eventLoop)
        self.logger = logger
        self.logger[metadataKey: "baton.peer"] = "\(peer)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closed = true
        let calls = self.calls
        self.calls.removeAll()
        for call in calls.values {
            call.task?.cancel()
            call.deadline?.cancel()
            call.writableWaiter?.resume(throwing: RPCError.cancelled("the connection closed"))
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closed else {
            return
        }
        self.flushes.readBurstStarted()
        do {
            let frame = try Baton_Rpc_V1_Frame.decoding(Self.unwrapInboundIn(data))
            try self.handle(frame, context: context)
        } catch {
            self.violated(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.readBurstEnded(context: context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for (id, call) in self.calls where call.writableWaiter != nil {
                self.calls[id]?.writableWaiter = nil
                call.writableWaiter?.resume()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !self.closed else {
            return
        }
        if error is ProtocolViolation {
            self.violated(error, context: context)
        } else {
            self.logger.debug("connection failed", metadata: ["baton.error": "\(error)"])
            self.closed = true
            context.close(promise: nil)
        }
    }

    /// How long a draining connection stays open after its last call has ended, so that requests the client sent
    /// before it read the GOAWAY are still read and answered `UNAVAILABLE`; a client that read it closes sooner.
    static let drainLinger = TimeAmount.milliseconds(500)

    /// Starts draining (version 1.1): sends one GOAWAY, answers every later REQUEST `UNAVAILABLE` without running
    /// it, lets the open calls finish, and closes the connection once they have ended and either the client has
    /// closed its side or ``drainLinger`` has passed.
    func beginDrain() {
        guard !self.draining, !self.closed, let context = self.context else {
            return
        }
        self.draining = true
        var goaway = Baton_Rpc_V1_Frame()
        goaway.kind = .goaway
        try? self.write(goaway, context: context)
        self.flushNow(context: context)
        if self.calls.isEmpty {
            self.lingerThenClose()
        }
    }

    /// Closes the connection after ``drainLinger``, unless a call is open then (its end closes it).
    private func lingerThenClose() {
        guard let context = self.context, !self.closed else {
            return
        }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.drainLinger) {
            if this.value.calls.isEmpty {
                this.value.closeAfterFlushing()
            }
        }
    }

    /// Closes the connection now, once the grace period is over: every open call ends `CANCELLED`, since it may
    /// have taken effect (`UNAVAILABLE` would tell the client it had not).
    func forceClose() {
        for id in Array(self.calls.keys) {
            self.end(
                id,
                .failure(
                    RPCError.cancelled("the server shut down before the call finished; it may have taken effect")
                )
            )
        }
        self.closeAfterFlushing()
    }

    /// Sends what has been written, then closes; nothing written before is lost.
    private func closeAfterFlushing() {
        guard let context = self.context, !self.closed else {
            return
        }
        self.closed = true
        self.flushNow(context: context)
        context.close(promise: nil)
    }

    // MARK: - Frames

    private func handle(_ frame: Baton_Rpc_V1_Frame, context: ChannelHandlerContext) throws(ProtocolViolation) {
        guard frame.callID != 0 else {
            throw ProtocolViolation("frame with call_id 0 (call ids are non-zero)")
        }
        switch frame.kind {
        case .request:
            try self.openCall(frame, context: context)
        case .cancel:
            guard self.calls[frame.callID] != nil else {
                return  // the call ended while the CANCEL was on its way
            }
            self.end(frame.callID, .failure(RPCError.cancelled("cancelled by the client")))
        case .message, .end, .goaway:
            throw ProtocolViolation(
                "client sent a \(frame.kind) frame for call \(frame.callID) (only servers send those)"
            )
        case .unspecified, .UNRECOGNIZED:
            throw ProtocolViolation("frame for call \(frame.callID) has unknown kind \(frame.kind.rawValue)")
        }
    }

    private func openCall(_ frame: Baton_Rpc_V1_Frame, context: ChannelHandlerContext) throws(ProtocolViolation) {
        let id = frame.callID
        guard !frame.method.isEmpty else {
            throw ProtocolViolation("REQUEST for call \(id) has no method")
        }
        guard self.calls[id] == nil else {
            throw ProtocolViolation("REQUEST reuses call id \(id), which is still open")
        }
        if self.draining {
            return self.writeEnd(
                id,
                .failure(RPCError.unavailable("the server is draining (it sent GOAWAY); the call did not run"))
            )
        }
        guard self.calls.count < Wire.maxOpenCalls else {
            return self.writeEnd(
                id,
                .failure(
                    RPCError(
                        code: .resourceExhausted,
                        message: "this connection already has \(Wire.maxOpenCalls) open calls; wait for one to end"
                    )
                )
            )
        }
        guard let handler = self.methods.handlers[frame.method] else {
            return self.writeEnd(
                id,
                .failure(
                    RPCError(code: .unimplemented, message: "method '\(frame.method)' is not served by this process")
                )
            )
        }

        let eventLoop = context.eventLoop
        let deadline = frame.timeoutMs > 0 ? NIODeadline.now() + .milliseconds(Int64(frame.timeoutMs)) : nil
        let rpcContext = RPCContext(
            method: frame.method,
            metadata: frame.metadata,
            deadline: deadline,
            peer: self.peer,
            callID: id,
            connectionLogger: self.logger
        )
        var call = Call(method: frame.method)
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        if frame.timeoutMs > 0 {
            let timeout = frame.timeoutMs
            call.deadline = eventLoop.scheduleTask(in: .milliseconds(Int64(timeout))) {
                this.value.end(
                    id,
                    .failure(RPCError.deadlineExceeded("the deadline of \(timeout) ms passed before the call finished"))
                )
            }
        }
        self.calls[id] = call

        let payload = [UInt8](frame.payload)
        switch handler {
        case .unary(let executor, let body):
            let work: @Sendable () async -> Void = {
                let result: Result<[UInt8], any Error>
                do {
                    result = .success(try await body(payload, rpcContext))
                } catch {
                    result = .failure(error)
                }
                eventLoop.runOnLoop { this.value.end(id, result) }
            }
            switch executor {
            case .eventLoop:
                // On the loop's executor: the call costs no thread hop unless the handler makes one.
                call.task = Task(executorPreference: self.executor, operation: work)
            case .concurrencyPool:
                // Off the loop, so that slow work never delays the loop's other calls.
                call.task = Task(operation: work)
            }
        case .serverStreaming(let body):
            // On the concurrency pool: NIO runs queued tasks until none are left before it reads again, so a stream
            // whose every send resumed at once on the loop would keep the loop from ever reading (a CANCEL, say).
            call.task = Task {
                let result: Result<[UInt8], any Error>
                do {
                    try await body(payload, rpcContext) { message in
                        try await withCheckedThrowingContinuation { continuation in
                            eventLoop.execute { this.value.send(message, on: id, continuation: continuation) }
                        }
                    }
                    result = .success([])
                } catch {
                    result = .failure(error)
                }
                eventLoop.execute { this.value.end(id, result) }
            }
        }
        self.calls[id]?.task = call.task
    }

    /// Sends one MESSAGE of a streaming call, resuming `continuation` once the channel can take more.
    private func send(_ message: [UInt8], on id: UInt64, continuation: CheckedContinuation<Void, any Error>) {
        guard let context = self.context, self.calls[id] != nil, !self.closed else {
            return continuation.resume(throwing: RPCError.cancelled("the call has ended"))
        }
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = id
        frame.kind = .message
        frame.payload = Data(message)
        do {
            try self.write(frame, context: context)
        } catch {
            return continuation.resume(throwing: error)
        }
        if context.channel.isWritable {
            continuation.resume()
        } else {
            self.calls[id]?.writableWaiter = continuation
        }
    }

    /// Ends call `id` with `result` unless it has already ended; cancels its task, timer and any waiting send.
    private func end(_ id: UInt64, _ result: Result<[UInt8], any Error>) {
        guard let call = self.calls.removeValue(forKey: id) else {
            return
        }
        call.task?.cancel()
        call.deadline?.cancel()
        call.writableWaiter?.resume(throwing: RPCError.cancelled("the call has ended"))
        self.writeEnd(id, result, method: call.method)
        if self.draining && self.calls.isEmpty {
            self.lingerThenClose()
        }
    }

    private func writeEnd(_ id: UInt64, _ result: Result<[UInt8], any Error>, method: String = "") {
        guard let context = self.context, !self.closed else {
            return
        }
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = id
        frame.kind = .end
        switch result {
        case .success(let payload):
            frame.payload = Data(payload)
            frame.status = .with { $0.code = RPCStatusCode.ok.rawValue }
        case .failure(let error):
            frame.status = Self.status(self.rpcError(for: error, method: method))
        }
        do {
            try self.write(frame, context: context)
        } catch {
            // The reply is too big for one frame: the call ends with why, and nothing of the reply is sent.
            frame.payload = Data()
            frame.status = Self.status(self.rpcError(for: error, method: method))
            try? self.write(frame, context: context)
        }
    }

    private static func status(_ error: RPCError) -> Baton_Rpc_V1_Status {
        .with {
            $0.code = error.code.rawValue
            $0.message = error.message
        }
    }

    private func write(_ frame: Baton_Rpc_V1_Frame, context: ChannelHandlerContext) throws {
        self.writeCoalesced(
            try frame.framedBuffer(allocator: context.channel.allocator),
            context: context,
            promise: nil
        )
    }

    /// The status a thrown error reaches the client as; anything unexpected is logged and sent as INTERNAL.
    private func rpcError(for error: any Error, method: String) -> RPCError {
        switch error {
        case let error as RPCError:
            return error
        case let error as any RPCErrorConvertible:
            return error.rpcError
        case is CancellationError:
            return RPCError.cancelled("the call was cancelled")
        default:
            self.logger.error(
                "handler failed",
                metadata: ["baton.rpc.method": "\(method)", "baton.error": "\(String(reflecting: error))"]
            )
            return RPCError(code: .internal, message: "internal error")
        }
    }

    private func violated(_ error: any Error, context: ChannelHandlerContext) {
        self.logger.warning(
            "protocol violation, closing the connection",
            metadata: ["baton.reason": "\(error)"]
        )
        for call in self.calls.values {
            call.task?.cancel()
        }
        self.closeAfterFlushing()
    }
}
