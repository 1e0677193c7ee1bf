import NIOCore
import SwiftProtobuf

extension Baton_Rpc_V1_Frame {
    /// The frame serialized behind its big-endian length prefix, in one buffer, ready for the socket.
    /// Throws ``RPCError`` `RESOURCE_EXHAUSTED` when the frame would exceed docs/PROTOCOL.md's 4 MiB limit.
    func framedBuffer(allocator: ByteBufferAllocator) throws -> ByteBuffer {
        Self.framedBuffer(body: try self.checkedBody(), allocator: allocator)
    }

    /// The serialized frame; throws ``RPCError`` `RESOURCE_EXHAUSTED` when it exceeds docs/PROTOCOL.md's 4 MiB limit.
    func checkedBody() throws -> [UInt8] {
        let body: [UInt8] = try self.serializedBytes()
        guard body.count <= Wire.maxFrameLength else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a frame of \(body.count) bytes exceeds the 4 MiB limit (\(Wire.maxFrameLength) bytes)"
            )
        }
        return body
    }

    /// A serialized frame behind its length prefix, in one buffer.
    static func framedBuffer(body: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
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
///
/// A batch is flushed early once it holds ``maxBatch`` frames: with many calls in flight, waiting for the whole
/// window would make the two ends take turns (one works while the other idles) instead of overlapping.
struct FlushCoalescer {
    static let maxBatch = 16

    private var unflushed = 0
    private var flushScheduled = false
    private var inReadBurst = false

    /// Marks the start of `channelRead` handling.
    mutating func readBurstStarted() {
        self.inReadBurst = true
    }

    /// Call in `channelReadComplete`: flushes whatever the burst wrote.
    mutating func readBurstEnded(context: ChannelHandlerContext) {
        self.inReadBurst = false
        self.flushNow(context: context)
    }

    /// Call after each write; `scheduleFlush` must arrange for ``flushNow(context:)`` to run later on the loop.
    mutating func wrote(context: ChannelHandlerContext, scheduleFlush: () -> Void) {
        self.unflushed += 1
        if self.unflushed >= Self.maxBatch {
            self.flushNow(context: context)
        } else if !self.inReadBurst && !self.flushScheduled {
            self.flushScheduled = true
            scheduleFlush()
        }
    }

    /// Flushes what was written and not yet flushed.
    mutating func flushNow(context: ChannelHandlerContext) {
        self.flushScheduled = false
        if self.unflushed > 0 {
            self.unflushed = 0
            context.flush()
        }
    }
}

/// A connection's handler that writes frames and flushes them through a ``FlushCoalescer``.
protocol CoalescingFrameWriter: AnyObject, SendableMetatype {
    /// The handler's context while it is in a pipeline.
    var context: ChannelHandlerContext? { get }
    /// The handler's flush state.
    var flushes: FlushCoalescer { get set }
}

extension CoalescingFrameWriter {
    /// Writes one length-prefixed frame; it goes out with the next coalesced flush.
    func writeCoalesced(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        context.write(NIOAny(buffer), promise: promise)
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.flushes.wrote(context: context) {
            context.eventLoop.execute {
                guard let context = this.value.context else {
                    return
                }
                this.value.flushes.flushNow(context: context)
            }
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
