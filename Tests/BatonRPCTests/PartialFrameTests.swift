import BatonProto
import BatonRPC
import BatonTestKit
import Foundation
import Logging
import SwiftProtobuf
import Testing

/// A server bounds what unfinished frames hold: a stalled one closes its connection after a while, and all of
/// them together stay under a limit; an idle connection between frames is left alone.
@Suite("Partial frames")
struct PartialFrameTests {
    /// The bytes of an Echo REQUEST whose data is `size` bytes.
    static func bigRequest(_ id: UInt64, size: Int) throws -> [UInt8] {
        var request = Baton_Testing_V1_EchoRequest()
        request.data = Data(repeating: 7, count: size)
        return try RawConnection.framed(try RawConnection.request(id, Baton_Testing_V1_Echo.Method.echo.path, request))
    }

    @Test("a partial frame that makes no progress closes its connection, with one log line; an idle one stays open")
    func stalledFrameCloses() async throws {
        let recorder = LogRecorder()
        let stallAfterHalfASecond: (inout RPCServer.Configuration) -> Void = {
            $0.stalledFrameTimeout = .milliseconds(500)
        }
        try await withEchoServer(recorder: recorder, configure: stallAfterHalfASecond) { socket, _, _ in
            let idle = try await RawConnection.connect(to: socket)
            try await idle.send(
                try RawConnection.request(1, Baton_Testing_V1_Echo.Method.echo.path, Baton_Testing_V1_EchoRequest())
            )
            #expect(try await idle.nextFrame()?.status.code == 0)

            let stalled = try await RawConnection.connect(to: socket)
            let bytes = try Self.bigRequest(1, size: 1 << 20)
            try await stalled.send(Array(bytes.prefix(100_000)))
            #expect(await stalled.waitForClose(), "the stalled connection was closed")
            #expect(recorder.messages(at: .warning).contains { $0.contains("made no progress") })

            // Well past the timeout, the idle connection (between frames, holding nothing) still works.
            try await idle.send(
                try RawConnection.request(2, Baton_Testing_V1_Echo.Method.echo.path, Baton_Testing_V1_EchoRequest())
            )
            let reply = try #require(try await idle.nextFrame())
            #expect(reply.callID == 2 && reply.status.code == 0)
            await idle.close()
        }
    }

    @Test("a connection that finished its partial frame and goes on sending whole frames is not taken for stalled")
    func finishedFrameIsProgress() async throws {
        let recorder = LogRecorder()
        // Three seconds, ten times the pauses below, so that a loaded machine (the end-to-end tests run beside this
        // one) does not make a pause look like a stall.
        let stallAfter: (inout RPCServer.Configuration) -> Void = { $0.stalledFrameTimeout = .seconds(3) }
        try await withEchoServer(recorder: recorder, configure: stallAfter) { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            let bytes = try Self.bigRequest(1, size: 10_000)
            try await connection.send(Array(bytes.prefix(5_000)))
            try await Task.sleep(for: .milliseconds(300))
            try await connection.send(Array(bytes.dropFirst(5_000)))
            #expect(try await connection.nextFrame()?.callID == 1)
            // Whole frames only from here, each read ending between frames, for three times the timeout.
            for id in UInt64(2)...31 {
                try await Task.sleep(for: .milliseconds(300))
                try await connection.send(try Self.bigRequest(id, size: 10))
                let reply = try #require(try await connection.nextFrame(), "the connection was closed at call \(id)")
                #expect(reply.callID == id)
            }
            #expect(!recorder.messages(at: .warning).contains { $0.contains("made no progress") })
            await connection.close()
        }
    }

    @Test("past the limit of all partial frames, the connection holding the most is closed; the others finish")
    func partialFramesAreBounded() async throws {
        let recorder = LogRecorder()
        let limit: (inout RPCServer.Configuration) -> Void = {
            $0.partialFrameLimit = 2_500_000
            // Only the limit closes a connection here, however slowly a loaded machine runs the test.
            $0.stalledFrameTimeout = .seconds(300)
        }
        try await withEchoServer(recorder: recorder, configure: limit) { socket, _, _ in
            let first = try await RawConnection.connect(to: socket)
            let second = try await RawConnection.connect(to: socket)
            let third = try await RawConnection.connect(to: socket)
            let size = 1_500_000
            let bytes = try Self.bigRequest(1, size: size)
            try await first.send(Array(bytes.prefix(1_200_000)))
            try await second.send(Array(bytes.prefix(1_000_000)))
            // 1.2 + 1 MB, and then the third's 0.4 MB pass the 2.5 MB limit: the first, holding the most, goes.
            try await third.send(Array(bytes.prefix(400_000)))
            #expect(await first.waitForClose())
            #expect(recorder.messages(at: .warning).contains { $0.contains("partial frames over their limit") })
            for (connection, sent) in [(second, 1_000_000), (third, 400_000)] {
                try await connection.send(Array(bytes.dropFirst(sent)))
                let reply = try #require(try await connection.nextFrame())
                #expect(reply.status.code == 0)
                #expect(try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload).data.count == size)
                await connection.close()
            }
        }
    }
}
