import BatonProto
import NIOCore
import SwiftProtobuf

extension Baton_Rpc_V1_Frame {
    /// The frame serialized behind its big-endian length prefix, in one buffer, ready for the socket.
    /// Throws ``RPCError`` `RESOURCE_EXHAUSTED` when the frame would exceed WIRE.md's 4 MiB limit.
    func framedBuffer(allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let body: [UInt8] = try self.serializedBytes()
        guard body.count <= Wire.maxFrameLength else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a frame of \(body.count) bytes exceeds the 4 MiB limit (\(Wire.maxFrameLength) bytes)"
            )
        }
        var buffer = allocator.buffer(capacity: Wire.lengthPrefixSize + body.count)
        buffer.writeInteger(UInt32(body.count), endianness: .big)
        buffer.writeBytes(body)
        return buffer
    }

    /// A frame decoded from one frame body; a body that does not decode is a protocol violation.
    static func decoding(_ body: ByteBuffer) throws(ProtocolViolation) -> Self {
        do {
            return try Self(serializedBytes: body.readableBytesSpan)
        } catch {
            throw ProtocolViolation(
                "frame of \(body.readableBytes) bytes does not decode as baton.rpc.v1.Frame: \(error)"
            )
        }
    }
}

/// Coalesces flushes: frames written while a read burst is being handled go out at its end, and frames written
/// from elsewhere on the event loop go out together once the loop has run what is already queued.
extension TimeAmount {
    /// The same span of time as a NIO `TimeAmount`, to the nanosecond, saturating at NIO's limits.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(overflow ? (seconds < 0 ? .min : .max) : scaled &+ attoseconds / 1_000_000_000)
    }
}

struct FlushCoalescer {
    private var flushPending = false
    private var inReadBurst = false

    /// Marks the start of `channelRead` handling.
    mutating func readBurstStarted() {
        self.inReadBurst = true
    }

    /// Call in `channelReadComplete`: flushes whatever the burst wrote.
    mutating func readBurstEnded(context: ChannelHandlerContext) {
        self.inReadBurst = false
        if self.flushPending {
            self.flushPending = false
            context.flush()
        }
    }

    /// Call after each write; `scheduleFlush` runs `flushNow` later on the same loop when no flush is due.
    mutating func wrote(scheduleFlush: () -> Void) {
        guard !self.flushPending else {
            return
        }
        self.flushPending = true
        if !self.inReadBurst {
            scheduleFlush()
        }
    }

    /// Call from the scheduled job: flushes if nothing flushed in between.
    mutating func flushNow(context: ChannelHandlerContext) {
        if self.flushPending {
            self.flushPending = false
            context.flush()
        }
    }
}

extension EventLoop {
    /// Runs `body` now when already on this loop, otherwise as soon as the loop gets to it.
    func runOnLoop(_ body: @escaping @Sendable () -> Void) {
        if self.inEventLoop {
            body()
        } else {
            self.execute(body)
        }
    }
}
