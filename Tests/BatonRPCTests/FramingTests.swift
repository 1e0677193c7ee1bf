import BatonProto
import BatonRPC
import BatonTestKit
import Foundation
import Logging
import SwiftProtobuf
import Testing

/// docs/PROTOCOL.md, "Frames": the length prefix, its limits, and what a receiver does with a frame that breaks them.
@Suite("Framing")
struct FramingTests {
    let echo = Baton_Testing_V1_Echo.Method.echo

    func echoRequest(_ id: UInt64, text: String = "hello", data: Data = Data()) throws -> Baton_Rpc_V1_Frame {
        var request = Baton_Testing_V1_EchoRequest()
        request.text = text
        request.data = data
        return try RawConnection.request(id, self.echo.path, request)
    }

    @Test("docs/PROTOCOL.md's worked example, byte for byte")
    func workedExample() async throws {
        // Grpc_Health_V1_Health.Method.check.path, 28 bytes
        let method = Array(Grpc_Health_V1_Health.Method.check.path.utf8)
        let request: [UInt8] = [0x00, 0x00, 0x00, 0x22, 0x08, 0x01, 0x10, 0x01, 0x1A, 0x1C] + method
        #expect(request.count == 4 + 34)
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = 1
        frame.kind = .request
        frame.method = Grpc_Health_V1_Health.Method.check.path
        #expect(try RawConnection.framed(frame) == request, "our encoder writes the worked example's bytes")

        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(request)
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 1)
            #expect(reply.kind == .end)
            #expect(reply.status.code == 0)
            #expect(reply.payload == Data([0x08, 0x01]), "status = SERVING")
            let answer: [UInt8] = [0x00, 0x00, 0x00, 0x0A, 0x08, 0x01, 0x10, 0x03, 0x32, 0x02, 0x08, 0x01, 0x3A, 0x00]
            #expect(try RawConnection.framed(reply) == answer, "the reply is the worked example's bytes")
            await connection.close()
        }
    }

    @Test("a frame split across many reads is reassembled")
    func frameSplitAcrossReads() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            let bytes = try RawConnection.framed(try self.echoRequest(7, text: "split"))
            for byte in bytes {
                try await connection.send([byte])
                try await Task.sleep(for: .milliseconds(1))
            }
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 7)
            #expect(reply.kind == .end)
            #expect(reply.status.code == 0)
            #expect(try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload).text == "split")
            await connection.close()
        }
    }

    @Test("many frames in one read are all answered")
    func manyFramesInOneRead() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            var bytes: [UInt8] = []
            for id in 1...200 {
                bytes += try RawConnection.framed(try self.echoRequest(UInt64(id), text: "n\(id)"))
            }
            try await connection.send(bytes)
            var answered: Set<UInt64> = []
            for _ in 1...200 {
                let reply = try #require(try await connection.nextFrame())
                #expect(reply.status.code == 0)
                #expect(try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload).text == "n\(reply.callID)")
                answered.insert(reply.callID)
            }
            #expect(answered == Set(1...200))
            await connection.close()
        }
    }

    /// A REQUEST whose serialized frame is exactly `size` bytes.
    func request(ofSize size: Int) throws -> [UInt8] {
        var frame = try self.echoRequest(1, data: Data())
        let overhead = (try frame.serializedBytes() as [UInt8]).count
        // payload grows by the data's bytes plus the data field's tag and length varint (1 + 3 bytes at this size)
        var data = Data(count: 0)
        var request = Baton_Testing_V1_EchoRequest()
        request.text = "hello"
        for guess in stride(from: size - overhead - 16, through: size - overhead, by: 1) {
            data = Data(count: max(0, guess))
            request.data = data
            frame.payload = try request.serializedBytes()
            if (try frame.serializedBytes() as [UInt8]).count == size {
                return try RawConnection.framed(frame)
            }
        }
        throw TestKitError("cannot build a frame of exactly \(size) bytes")
    }

    @Test("a frame of exactly 4 MiB is accepted")
    func exactlyFourMiB() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            let bytes = try self.request(ofSize: Wire.maxFrameLength)
            #expect(bytes.count == Wire.maxFrameLength + 4)
            try await connection.send(bytes)
            let reply = try #require(try await connection.nextFrame())
            #expect(reply.callID == 1)
            #expect(reply.status.code == 0)
            let echoed = try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload)
            #expect(echoed.data.count > Wire.maxFrameLength - 64)
            await connection.close()
        }
    }

    @Test("a frame of 4 MiB + 1 closes the connection, with one log line")
    func overFourMiB() async throws {
        let recorder = LogRecorder()
        try await withEchoServer(recorder: recorder) { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(RawConnection.lengthPrefix(Wire.maxFrameLength + 1) + [0x08, 0x01])
            #expect(await connection.waitForClose())
            let warnings = recorder.messages(at: .warning)
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("frame of 4194305 bytes exceeds the 4 MiB limit") == true)
        }
    }

    @Test("a length of 0 closes the connection")
    func zeroLength() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send([0, 0, 0, 0])
            #expect(await connection.waitForClose())
        }
    }

    @Test("a frame that does not decode closes the connection")
    func garbage() async throws {
        try await withEchoServer { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(RawConnection.lengthPrefix(6) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            #expect(await connection.waitForClose())
        }
    }

    @Test("an HTTP request closes that connection and the server keeps serving others")
    func httpClient() async throws {
        let recorder = LogRecorder()
        try await withEchoServer(recorder: recorder) { socket, _, _ in
            let bystander = try await RawConnection.connect(to: socket)
            let http = try await RawConnection.connect(to: socket)
            try await http.send(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
            #expect(await http.waitForClose())
            #expect(recorder.messages(at: .warning).first?.contains("(is this an HTTP client?)") == true)

            try await bystander.send(try self.echoRequest(3, text: "still here"))
            let reply = try #require(try await bystander.nextFrame())
            #expect(reply.status.code == 0)
            #expect(try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload).text == "still here")
            await bystander.close()
        }
    }

    @Test("random bytes on many connections never take the server down or disturb a bystander")
    func randomInput() async throws {
        var generator = SystemRandomNumberGenerator()
        try await withEchoServer { socket, _, _ in
            let bystander = try await RawConnection.connect(to: socket)
            for round in 0..<200 {
                let connection = try await RawConnection.connect(to: socket)
                let length = Int.random(in: 1...64, using: &generator)
                var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if round.isMultiple(of: 2) {
                    // A plausible length prefix, so the garbage reaches the frame decoder.
                    bytes = RawConnection.lengthPrefix(bytes.count) + bytes
                }
                try await connection.send(bytes)
                await connection.close()
                if round.isMultiple(of: 20) {
                    try await bystander.send(try self.echoRequest(UInt64(round + 1), text: "alive \(round)"))
                    let reply = try #require(try await bystander.nextFrame())
                    #expect(reply.callID == UInt64(round + 1))
                    #expect(try Baton_Testing_V1_EchoReply(serializedBytes: reply.payload).text == "alive \(round)")
                }
            }
            await bystander.close()
        }
    }

    /// A frame that breaks docs/PROTOCOL.md in the way `name` says.
    static func violating(_ name: String) -> Baton_Rpc_V1_Frame {
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = 1
        frame.method = Baton_Testing_V1_Echo.Method.echo.path
        switch name {
        case "call_id 0":
            frame.callID = 0
            frame.kind = .request
        case "a REQUEST with no method":
            frame.kind = .request
            frame.method = ""
        case "a MESSAGE from a client":
            frame.kind = .message
        case "an END from a client":
            frame.kind = .end
        case "the unspecified kind":
            frame.kind = .unspecified
        default:
            frame.kind = .UNRECOGNIZED(9)
        }
        return frame
    }

    @Test(
        "each protocol violation closes the connection, with one log line",
        arguments: [
            "call_id 0", "a REQUEST with no method", "a MESSAGE from a client", "an END from a client",
            "the unspecified kind", "an unknown kind",
        ]
    )
    func violation(name: String) async throws {
        let recorder = LogRecorder()
        try await withEchoServer(recorder: recorder) { socket, _, _ in
            let connection = try await RawConnection.connect(to: socket)
            try await connection.send(Self.violating(name))
            #expect(await connection.waitForClose(), "\(name)")
            #expect(recorder.messages(at: .warning).count == 1, "\(name)")
        }
    }
}
