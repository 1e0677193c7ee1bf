public import NIOCore

/// Splits the byte stream into frame bodies: a big-endian `UInt32` length, then that many bytes.
///
/// NIOExtras' `LengthFieldBasedFrameDecoder` accepts lengths up to 2 GiB and would buffer that much before
/// handing anything on, so an HTTP client's first bytes ("GET " reads as 1,195,725,856) would sit in memory
/// until the peer gave up. docs/PROTOCOL.md wants the length refused the moment it is read, so this decoder checks it
/// before waiting for the body.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// A decoder enforcing docs/PROTOCOL.md's limit of `maxFrameLength` bytes per frame.
    public init(maxFrameLength: Int = Wire.maxFrameLength) {
        self.maxFrameLength = maxFrameLength
        self.watch = nil
    }

    /// A decoder that tells `watch` how much of an unfinished frame it holds, after every read.
    init(maxFrameLength: Int = Wire.maxFrameLength, watch: PartialFrameWatch) {
        self.maxFrameLength = maxFrameLength
        self.watch = watch
    }

    private let maxFrameLength: Int
    private let watch: PartialFrameWatch?

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            self.watch?.holding(buffer.readableBytes)
            return .needMoreData
        }
        guard length > 0 else {
            throw ProtocolViolation("frame of 0 bytes (a frame is 1 to \(self.maxFrameLength) bytes)")
        }
        guard length <= self.maxFrameLength else {
            let hint = length == 0x4745_5420 || length == 0x504F_5354 ? " (is this an HTTP client?)" : ""
            throw ProtocolViolation("frame of \(length) bytes exceeds the 4 MiB limit\(hint)")
        }
        guard buffer.readableBytes >= Wire.lengthPrefixSize + Int(length) else {
            self.watch?.holding(buffer.readableBytes)
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: Wire.lengthPrefixSize)
        let body = buffer.readSlice(length: Int(length))!
        if buffer.readableBytes == 0 {
            // Between frames: ByteToMessageHandler may not call again with an empty buffer, so say so now.
            self.watch?.holding(0)
        }
        context.fireChannelRead(Self.wrapInboundOut(body))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// The peer broke docs/PROTOCOL.md: the connection is closed after one log line naming what it did.
public struct ProtocolViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// What the peer did wrong, for the log line.
    public let description: String

    /// A violation described in one sentence.
    public init(_ description: String) {
        self.description = description
    }
}
