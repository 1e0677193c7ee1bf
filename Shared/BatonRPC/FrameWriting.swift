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
///
/// It only keeps the count and says when to flush; the handler flushes, after the mutation has ended. A flush can
/// re-enter the handler (NIO may deliver a read or an error from inside it), and a handler that flushed from
/// inside a mutating method of its own stored coalescer would then access it twice at once.
struct FlushCoalescer {
    static let maxBatch = 16

    /// What a handler does after writing a frame.
    enum AfterWrite {
        case flushNow
        case scheduleFlush
        case nothing
    }

    private var unflushed = 0
    private var flushScheduled = false
    private var inReadBurst = false

    /// Marks the start of `channelRead` handling.
    mutating func readBurstStarted() {
        self.inReadBurst = true
    }

    /// Marks the end of a read burst (`channelReadComplete`); true when what it wrote must be flushed now.
    mutating func readBurstEnded() -> Bool {
        self.inReadBurst = false
        return self.takeUnflushed()
    }

    /// Counts a write, and says whether to flush now, to arrange a flush later on the loop, or neither.
    mutating func wrote() -> AfterWrite {
        self.unflushed += 1
        if self.unflushed >= Self.maxBatch {
            return self.takeUnflushed() ? .flushNow : .nothing
        }
        if !self.inReadBurst && !self.flushScheduled {
            self.flushScheduled = true
            return .scheduleFlush
        }
        return .nothing
    }

    /// Takes what was written and not yet flushed: true when there is something to flush.
    mutating func takeUnflushed() -> Bool {
        self.flushScheduled = false
        guard self.unflushed > 0 else {
            return false
        }
        self.unflushed = 0
        return true
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
        switch self.flushes.wrote() {
        case .flushNow:
            context.flush()
        case .scheduleFlush:
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute {
                guard let context = this.value.context else {
                    return
                }
                this.value.flushNow(context: context)
            }
        case .nothing:
            break
        }
    }

    /// Flushes what was written and not yet flushed.
    func flushNow(context: ChannelHandlerContext) {
        if self.flushes.takeUnflushed() {
            context.flush()
        }
    }

    /// Call in `channelReadComplete`: flushes whatever the read burst wrote.
    func readBurstEnded(context: ChannelHandlerContext) {
        if self.flushes.readBurstEnded() {
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
