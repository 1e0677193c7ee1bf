import BatonProto
import BatonRPC
import BatonTestKit
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SwiftProtobuf
import Testing

/// docs/PROTOCOL.md, "Calls": unary and streaming replies, multiplexing, deadlines, CANCEL and the status of each error.
@Suite("Calls")
struct CallTests {
    let echo = Baton_Testing_V1_Echo.Method.echo
    let hang = Baton_Testing_V1_Echo.Method.hang
    let expand = Baton_Testing_V1_Echo.Method.expand

    func text(_ text: String, delayMs: UInt32 = 0) -> Baton_Testing_V1_EchoRequest {
        var request = Baton_Testing_V1_EchoRequest()
        request.text = text
        request.delayMs = delayMs
        return request
    }

    func tagged(_ tag: String) -> Baton_Testing_V1_EchoRequest {
        var request = Baton_Testing_V1_EchoRequest()
        request.tag = tag
        return request
    }

    @Test("a unary call returns the handler's reply")
    func unarySuccess() async throws {
        try await withEchoServer { socket, _, _ in
            let client = RPCClient(socketPath: socket)
            let reply = try await client.unary(self.echo, self.text("hi there"))
            #expect(reply.text == "hi there")
            await client.close()
        }
    }

    @Test("an unknown method ends UNIMPLEMENTED, naming the method")
    func unknownMethod() async throws {
        try await withEchoServer { socket, _, _ in
            let client = RPCClient(socketPath: socket)
            let error = await #expect(throws: RPCError.self) {
                try await client.unary(
                    UnaryMethod<Baton_Testing_V1_EchoRequest, Baton_Testing_V1_EchoReply>(
                        path: "/baton.nothing.v1.Nobody/Nothing"
                    ),
                    self.text("x")
                )
            }
            #expect(error?.code == .unimplemented)
            #expect(error?.message.contains("/baton.nothing.v1.Nobody/Nothing") == true)
            await client.close()
        }
    }

    @Test("a payload that does not decode ends INVALID_ARGUMENT, naming the message type")
    func undecodablePayload() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            var frame = try RawConnection.request(4, self.echo.path, self.text(""))
            frame.payload = Data([0xFF, 0xFF, 0xFF])
            try await connection.send(frame)
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 4)
            #expect(reply.status.code == RPCStatusCode.invalidArgument.rawValue)
            #expect(reply.status.message.contains("baton.testing.v1.EchoRequest"))
            #expect(reply.payload.isEmpty)
            await connection.close()
        }
    }

    @Test("a server-streaming call sends each MESSAGE, then END")
    func serverStreaming() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            var request = self.text("s")
            request.count = 5
            try await connection.send(try RawConnection.request(9, self.expand.path, request))
            for index in 0..<5 {
                let frame = try #require(try await connection.nextFrame())
                #expect(frame.kind == .message)
                #expect(try Baton_Testing_V1_EchoReply(serializedBytes: frame.payload).index == UInt32(index))
            }
            let end = try #require(try await connection.nextFrame())
            #expect(end.kind == .end)
            #expect(end.status.code == 0)
            #expect(end.payload.isEmpty)
            await connection.close()

            let client = RPCClient(socketPath: socket)
            var indices: [UInt32] = []
            for try await reply in try client.serverStream(self.expand, request) {
                indices.append(reply.index)
            }
            #expect(indices == [0, 1, 2, 3, 4])
            await client.close()
        }
    }

    @Test(
        "a stream's consumer that stops early sends CANCEL, and the connection stays usable",
        .timeLimit(.minutes(1))
    )
    func streamConsumerStops() async throws {
        try await withEchoServer { socket, echo, _ in
            let client = RPCClient(socketPath: socket)
            var request = self.text("many")
            request.count = 100_000_000
            request.tag = "abandoned stream"
            var seen = 0
            for try await _ in try client.serverStream(self.expand, request) {
                seen += 1
                if seen == 5 {
                    break
                }
            }
            #expect(seen == 5)
            #expect(await eventually { echo.sawCancellation("abandoned stream") })
            let reply = try await client.unary(self.echo, self.text("after"))
            #expect(reply.text == "after")
            await client.close()
        }
    }

    @Test("the handler's context carries the request's metadata and deadline")
    func contextCarriesMetadataAndDeadline() async throws {
        var methods = RPCMethods()
        methods.unary(self.echo) { (_: Baton_Testing_V1_EchoRequest, context) -> Baton_Testing_V1_EchoReply in
            var reply = Baton_Testing_V1_EchoReply()
            let left = context.deadline.map { ($0 - .now()).nanoseconds / 1_000_000 } ?? -1
            reply.text = "\(context.metadata["request-id"] ?? "none") \(left > 30_000 && left <= 60_000)"
            return reply
        }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = RPCServer(
            configuration: .init(socketPath: directory.appending("ctx.sock")),
            methods: methods,
            logger: Logger(label: "ctx")
        )
        try await server.bind()
        async let running: Void = server.run()
        let client = RPCClient(socketPath: server.configuration.socketPath)
        let reply = try await client.unary(
            self.echo,
            self.text(""),
            options: CallOptions(timeout: .seconds(60), metadata: ["request-id": "r-42"])
        )
        #expect(reply.text == "r-42 true")
        await client.close()
        server.shutdown()
        try await running
    }

    @Test("1,000 concurrent calls on one connection run at the same time and complete, out of order")
    func thousandConcurrentCalls() async throws {
        try await withEchoServer { socket, echo, _ in
            let client = RPCClient(socketPath: socket)
            let finished = NIOLockedValueBox<[Int]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<1000 {
                    group.addTask {
                        // Later calls are quicker, so replies overtake earlier calls.
                        let delay = UInt32((999 - index) % 50)
                        let reply = try await client.unary(
                            self.echo,
                            self.text("call \(index)", delayMs: delay),
                        )
                        #expect(reply.text == "call \(index)")
                        finished.withLockedValue { $0.append(index) }
                    }
                }
                try await group.waitForAll()
            }
            let order = finished.withLockedValue { $0 }
            #expect(order.count == 1000)
            #expect(Set(order).count == 1000)
            #expect(order != order.sorted(), "replies should arrive in the order calls finish, not the order sent")
            // Proof on the server's side: a server that ran one call at a time would never have two asleep at once.
            #expect(echo.mostDelayingAtOnce > 100, "\(echo.mostDelayingAtOnce) calls were in their handlers at once")
            await client.close()
        }
    }

    @Test("a passed deadline ends DEADLINE_EXCEEDED and the handler sees cancellation")
    func deadline() async throws {
        try await withEchoServer { socket, echo, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(
                try RawConnection.request(5, self.hang.path, self.tagged("deadline"), timeoutMs: 100)
            )
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 5)
            #expect(reply.status.code == RPCStatusCode.deadlineExceeded.rawValue)
            #expect(await eventually { echo.sawCancellation("deadline") })
            await connection.close()

            let client = RPCClient(socketPath: socket)
            let error = await #expect(throws: RPCError.self) {
                try await client.unary(
                    self.hang,
                    self.tagged("client deadline"),
                    options: CallOptions(timeout: .milliseconds(100))
                )
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(await eventually { echo.sawCancellation("client deadline") })
            await client.close()
        }
    }

    @Test("CANCEL ends the call CANCELLED and the handler sees cancellation")
    func cancel() async throws {
        try await withEchoServer { socket, echo, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(try RawConnection.request(6, self.hang.path, self.tagged("cancel")))
            #expect(await eventually { echo.hasStarted("cancel") })
            var cancel = Baton_Rpc_V1_Frame()
            cancel.callID = 6
            cancel.kind = .cancel
            try await connection.send(cancel)
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 6)
            #expect(reply.status.code == RPCStatusCode.cancelled.rawValue)
            #expect(await eventually { echo.sawCancellation("cancel") })
            // A CANCEL for a call that has already ended is ignored, and the connection stays usable.
            try await connection.send(cancel)
            try await connection.send(try RawConnection.request(7, self.echo.path, self.text("after")))
            let after = try #require(try await connection.nextFrame())
            #expect(after.callID == 7)
            #expect(after.status.code == 0)
            await connection.close()
        }
    }

    @Test("cancelling the calling task sends CANCEL")
    func taskCancellation() async throws {
        try await withEchoServer { socket, echo, _ in
            let client = RPCClient(socketPath: socket)
            let task = Task {
                try await client.unary(self.hang, self.tagged("task"))
            }
            #expect(await eventually { echo.hasStarted("task") })
            task.cancel()
            let result = await task.result
            #expect(throws: RPCError.self) { try result.get() }
            #expect(await eventually { echo.sawCancellation("task") })
            await client.close()
        }
    }

    @Test("a REQUEST beyond 1,024 open calls ends RESOURCE_EXHAUSTED")
    func openCallLimit() async throws {
        try await withEchoServer { socket, echo, _ in
            let connection = try await RawConnection.connect(to: socket)
            var bytes: [UInt8] = []
            for id in 1...Wire.maxOpenCalls {
                bytes += try RawConnection.framed(
                    try RawConnection.request(UInt64(id), self.hang.path, self.tagged("h\(id)"))
                )
            }
            try await connection.send(bytes)
            #expect(await eventually { echo.hasStarted("h\(Wire.maxOpenCalls)") })
            try await connection.send(try RawConnection.request(5000, self.echo.path, self.text("one too many")))
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 5000)
            #expect(reply.status.code == RPCStatusCode.resourceExhausted.rawValue)
            await connection.close()
            #expect(await eventually { echo.sawCancellation("h1") }, "closing the connection cancels its calls")
        }
    }

    @Test("a client with more calls than the open-calls limit queues the rest instead of failing them")
    func clientQueuesBeyondLimit() async throws {
        try await withEchoServer { socket, _, _ in
            let client = RPCClient(socketPath: socket)
            let total = Wire.maxOpenCalls * 3
            let succeeded = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<total {
                    group.addTask {
                        let reply = try await client.unary(
                            self.echo,
                            self.text("q\(index)", delayMs: 20),
                        )
                        return reply.text == "q\(index)"
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(succeeded == total)
            await client.close()
        }
    }

    @Test("a REQUEST that reuses an open call id closes the connection")
    func reusedCallID() async throws {
        try await withEchoServer { socket, echo, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(try RawConnection.request(8, self.hang.path, self.tagged("first")))
            #expect(await eventually { echo.hasStarted("first") })
            try await connection.send(try RawConnection.request(8, self.echo.path, self.text("again")))
            #expect(await connection.waitForClose())
            #expect(await eventually { echo.sawCancellation("first") })
        }
    }

    @Test("an unexpected error reaches the client as INTERNAL, without its details")
    func internalError() async throws {
        struct Secret: Error {}
        var methods = RPCMethods()
        methods.unary(Baton_Testing_V1_Echo.Method.echo) {
            (_: Baton_Testing_V1_EchoRequest, _) -> Baton_Testing_V1_EchoReply in
            throw Secret()
        }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let recorder = LogRecorder()
        let server = RPCServer(
            configuration: .init(socketPath: directory.appending("s.sock")),
            methods: methods,
            logger: recorder.logger()
        )
        try await server.bind()
        async let running: Void = server.run()
        let client = RPCClient(socketPath: server.configuration.socketPath)
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(self.echo, self.text(""))
        }
        #expect(error == RPCError(code: .internal, message: "internal error"))
        #expect(recorder.messages(at: .error).first?.contains("Secret") == true)
        await client.close()
        server.shutdown()
        try await running
    }
}
