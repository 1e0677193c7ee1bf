import BatonProto
import BatonRPC
import BatonTestKit
import SwiftProtobuf
import Testing

/// Protocol version 1.1, "Draining": GOAWAY from the server, and what the client does with it.
@Suite("Draining")
struct DrainTests {
    static func echo(_ text: String, tag: String = "", delayMs: UInt32 = 0) -> Baton_Testing_V1_EchoRequest {
        .with {
            $0.text = text
            $0.tag = tag
            $0.delayMs = delayMs
        }
    }

    /// Reads frames until one for `callID` (0 for GOAWAY) arrives, keeping the others in `seen`.
    static func frame(
        for callID: UInt64,
        from connection: RawConnection,
        seen: inout [Baton_Rpc_V1_Frame]
    ) async throws -> Baton_Rpc_V1_Frame? {
        if let index = seen.firstIndex(where: { $0.callID == callID }) {
            return seen.remove(at: index)
        }
        while let frame = try await connection.nextFrame() {
            if frame.callID == callID {
                return frame
            }
            seen.append(frame)
        }
        return nil
    }

    @Test(
        "a draining server sends GOAWAY, lets the open call go on, answers a later REQUEST UNAVAILABLE unrun, and closes"
    )
    func serverSendsGoaway() async throws {
        try await withEchoServer(gracePeriod: .seconds(30)) { socket, echo, server in
            let connection = try await RawConnection.connect(to: socket)
            // A call that runs until it is cancelled keeps the connection open for as long as the test needs.
            let open = Self.echo("open", tag: "open")
            try await connection.send(try RawConnection.request(1, Baton_Testing_V1_Echo.Method.hang.path, open))
            #expect(await eventually { echo.hasStarted("open") })
            server.shutdown()
            var seen: [Baton_Rpc_V1_Frame] = []
            let goaway = try #require(try await Self.frame(for: 0, from: connection, seen: &seen))
            #expect(goaway.kind == .goaway)
            let late = Self.echo("late", tag: "late")
            try await connection.send(try RawConnection.request(2, Baton_Testing_V1_Echo.Method.echo.path, late))
            let refused = try #require(try await Self.frame(for: 2, from: connection, seen: &seen))
            #expect(refused.kind == .end && refused.status.code == RPCStatusCode.unavailable.rawValue)
            #expect(!echo.hasStarted("late"), "a REQUEST after GOAWAY never runs")
            #expect(!echo.sawCancellation("open"), "the call open before the GOAWAY goes on")
            var cancel = Baton_Rpc_V1_Frame()
            cancel.callID = 1
            cancel.kind = .cancel
            try await connection.send(cancel)
            let ended = try #require(try await Self.frame(for: 1, from: connection, seen: &seen))
            #expect(ended.status.code == RPCStatusCode.cancelled.rawValue)
            #expect(await connection.waitForClose(), "the connection closes once its calls have ended")
        }
    }

    @Test(
        "the client sends a call the draining server refused once more, on a new connection, and no new call goes to the old one"
    )
    func clientRetriesOnANewConnection() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let listener = try await RawListener.listen(at: directory.appending("drain.sock"))
        let client = RPCClient(socketPath: listener.path)
        let echo = Baton_Testing_V1_Echo.Client(client)
        async let first = echo.echo(Self.echo("first"), options: CallOptions(timeout: .seconds(10)))

        // The old server: it reads the REQUEST, then drains and refuses it, as a REQUEST that crossed its GOAWAY.
        let old = try await listener.accept()
        let request = try #require(try await old.nextFrame())
        var goaway = Baton_Rpc_V1_Frame()
        goaway.kind = .goaway
        var refused = Baton_Rpc_V1_Frame()
        refused.callID = request.callID
        refused.kind = .end
        refused.status = .with { $0.code = RPCStatusCode.unavailable.rawValue }
        try await old.send(goaway)
        try await old.send(refused)

        // The new server gets the same request, once, on a new connection, and answers it.
        let new = try await listener.accept()
        let again = try #require(try await new.nextFrame())
        #expect(again.method == request.method && again.payload == request.payload)
        var reply = Baton_Rpc_V1_Frame()
        reply.callID = again.callID
        reply.kind = .end
        reply.payload = try Baton_Testing_V1_EchoReply.with { $0.text = "answered by the new one" }.serializedBytes()
        try await new.send(reply)
        #expect(try await first.text == "answered by the new one")
        #expect(await old.waitForClose(), "the client closes the drained connection once it carries no call")

        // A later call goes to the new connection.
        async let second = echo.echo(Self.echo("second"), options: CallOptions(timeout: .seconds(10)))
        let next = try #require(try await new.nextFrame())
        var secondReply = Baton_Rpc_V1_Frame()
        secondReply.callID = next.callID
        secondReply.kind = .end
        secondReply.payload = try Baton_Testing_V1_EchoReply.with { $0.text = "second" }.serializedBytes()
        try await new.send(secondReply)
        #expect(try await second.text == "second")
        await client.close()
        await listener.close()
    }

    @Test("a call refused by a draining server is sent again only once")
    func retriedOnlyOnce() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let listener = try await RawListener.listen(at: directory.appending("drain.sock"))
        let client = RPCClient(socketPath: listener.path)
        let call = Task {
            try await Baton_Testing_V1_Echo.Client(client).echo(options: CallOptions(timeout: .seconds(10)))
        }
        for _ in 0..<2 {
            let connection = try await listener.accept()
            let request = try #require(try await connection.nextFrame())
            var goaway = Baton_Rpc_V1_Frame()
            goaway.kind = .goaway
            var refused = Baton_Rpc_V1_Frame()
            refused.callID = request.callID
            refused.kind = .end
            refused.status = .with {
                $0.code = RPCStatusCode.unavailable.rawValue
                $0.message = "draining"
            }
            try await connection.send(goaway)
            try await connection.send(refused)
        }
        let error = await #expect(throws: RPCError.self) { try await call.value }
        #expect(error?.code == .unavailable)
        await client.close()
        await listener.close()
    }
}
