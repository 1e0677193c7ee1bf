public import BatonRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
public import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket connection that sends and receives raw bytes, so a test can speak docs/PROTOCOL.md byte by byte, break
/// it on purpose, and see exactly what the server answers.
public final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<(bytes: ByteBuffer, closed: Bool)>

    private init(channel: any Channel, received: NIOLockedValueBox<(bytes: ByteBuffer, closed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    /// Connects to the socket at `path`.
    public static func connect(to path: String) async throws -> RawConnection {
        let received = NIOLockedValueBox((bytes: ByteBuffer(), closed: false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(unixDomainSocketPath: path)
            .get()
        return RawConnection(channel: channel, received: received)
    }

    /// Connects over TCP to `host`:`port` (an HTTP server, say, to send it exactly the bytes a test wants).
    public static func connect(host: String, port: Int) async throws -> RawConnection {
        let received = NIOLockedValueBox((bytes: ByteBuffer(), closed: false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: host, port: port)
            .get()
        return RawConnection(channel: channel, received: received)
    }

    /// Everything received so far, as text, once `done` holds of it, or the connection has closed, or `timeout`
    /// has passed, whichever comes first.
    public func text(within timeout: Duration = .seconds(60), until done: @Sendable (String) -> Bool) async -> String {
        let read = { self.received.withLockedValue { (String(buffer: $0.bytes), $0.closed) } }
        _ = await eventually(within: timeout) {
            let (text, closed) = read()
            return closed || done(text)
        }
        return read().0
    }

    /// A connection that `listener` accepted: the server's side, for a test that plays the server.
    static func accepted(
        _ channel: any Channel,
        received: NIOLockedValueBox<(bytes: ByteBuffer, closed: Bool)>
    )
        -> RawConnection
    {
        RawConnection(channel: channel, received: received)
    }

    /// Sends `bytes` as they are, in one write.
    public func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Sends `frame` behind its length prefix.
    public func send(_ frame: Baton_Rpc_V1_Frame) async throws {
        try await self.send(try Self.framed(frame))
    }

    /// `frame` serialized behind its big-endian length prefix.
    public static func framed(_ frame: Baton_Rpc_V1_Frame) throws -> [UInt8] {
        let body: [UInt8] = try frame.serializedBytes()
        return Self.lengthPrefix(body.count) + body
    }

    /// The 4-byte big-endian length prefix for a body of `length` bytes.
    public static func lengthPrefix(_ length: Int) -> [UInt8] {
        let length = UInt32(truncatingIfNeeded: length)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    }

    /// A REQUEST frame for `method` carrying `request`.
    public static func request(
        _ callID: UInt64,
        _ method: String,
        _ request: some Message,
        timeoutMs: UInt32 = 0
    ) throws -> Baton_Rpc_V1_Frame {
        var frame = Baton_Rpc_V1_Frame()
        frame.callID = callID
        frame.kind = .request
        frame.method = method
        frame.timeoutMs = timeoutMs
        frame.payload = try request.serializedBytes()
        return frame
    }

    /// The next frame from the peer (the server, or the client of a ``RawListener``), or nil when the peer closed
    /// the connection first.
    /// Throws when nothing arrives within `timeout`.
    public func nextFrame(within timeout: Duration = .seconds(60)) async throws -> Baton_Rpc_V1_Frame? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let (body, closed) = self.received.withLockedValue { received -> (ByteBuffer?, Bool) in
                guard let length = received.bytes.getInteger(at: received.bytes.readerIndex, as: UInt32.self),
                    received.bytes.readableBytes >= 4 + Int(length)
                else {
                    return (nil, received.closed)
                }
                received.bytes.moveReaderIndex(forwardBy: 4)
                return (received.bytes.readSlice(length: Int(length)), false)
            }
            if let body {
                return try Baton_Rpc_V1_Frame(serializedBytes: Array(body.readableBytesView))
            }
            if closed {
                return nil
            }
            guard clock.now < deadline else {
                throw TestKitError("no frame from the server within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Waits until the server closes the connection, skipping any frames it sends first; returns whether it did
    /// within `timeout`.
    public func waitForClose(within timeout: Duration = .seconds(60)) async -> Bool {
        await eventually(within: timeout) {
            self.received.withLockedValue { $0.closed }
        }
    }

    /// Closes the connection.
    public func close() async {
        try? await self.channel.close()
    }
}

private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let received: NIOLockedValueBox<(bytes: ByteBuffer, closed: Bool)>

    init(received: NIOLockedValueBox<(bytes: ByteBuffer, closed: Bool)>) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        _ = self.received.withLockedValue { $0.bytes.writeBuffer(&bytes) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.received.withLockedValue { $0.closed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A Unix socket that a test listens on to play the server, byte by byte: to see what a client sends and to answer
/// it with exactly the frames the test wants.
public final class RawListener: Sendable {
    private let channel: any Channel
    private let accepted: AsyncStream<RawConnection>
    /// The socket's path.
    public let path: String

    private init(channel: any Channel, accepted: AsyncStream<RawConnection>, path: String) {
        self.channel = channel
        self.accepted = accepted
        self.path = path
    }

    /// Listens on `path`.
    public static func listen(at path: String) async throws -> RawListener {
        let (stream, continuation) = AsyncStream<RawConnection>.makeStream()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let received = NIOLockedValueBox((bytes: ByteBuffer(), closed: false))
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                    continuation.yield(RawConnection.accepted(channel, received: received))
                }
            }
            .bind(unixDomainSocketPath: path)
            .get()
        return RawListener(channel: channel, accepted: stream, path: path)
    }

    /// The next connection a client opens; throws when none comes within `timeout`.
    public func accept(within timeout: Duration = .seconds(10)) async throws -> RawConnection {
        let accepted = self.accepted
        return try await withThrowingTaskGroup(of: RawConnection?.self) { group in
            group.addTask {
                var iterator = accepted.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let connection = try await group.next() ?? nil else {
                throw TestKitError("no connection to \(self.path) within \(timeout)")
            }
            return connection
        }
    }

    /// Stops listening and removes the socket file.
    public func close() async {
        try? await self.channel.close()
        unlink(self.path)
    }
}
