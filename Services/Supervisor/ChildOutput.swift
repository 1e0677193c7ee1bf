import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A process's output: each line goes to the supervisor's standard output behind the process's name, and the last
/// ``capacity`` lines are kept for `batonctl logs`.
final class ChildOutput: Sendable {
    static let capacity = 1000

    let name: String
    private let prefix: String
    private let lines = NIOLockedValueBox<[String]>([])
    private static let terminal = isatty(1) != 0
    private static let writeLock = NIOLock()

    /// Output for `name`, its prefix padded to `width` and coloured with `colour` when stdout is a terminal.
    init(name: String, width: Int, colour: Int) {
        self.name = name
        let padded = name + String(repeating: " ", count: max(0, width - name.count))
        self.prefix = Self.terminal ? "\u{1B}[\(31 + colour % 6)m\(padded) |\u{1B}[0m " : "\(padded) | "
    }

    /// The kept lines, oldest first.
    var kept: [String] {
        self.lines.withLockedValue { $0 }
    }

    /// Records one line of the process's output and relays it.
    func append(_ line: String) {
        self.lines.withLockedValue { lines in
            lines.append(line)
            if lines.count > Self.capacity {
                lines.removeFirst(lines.count - Self.capacity)
            }
        }
        let stamp = Self.terminal ? "" : Self.timestamp() + " "
        Self.writeLine(stamp + self.prefix + line)
    }

    /// Writes one whole line to standard output, never interleaved with another.
    static func writeLine(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        Self.writeLock.withLock {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                guard written > 0 else {
                    return
                }
                offset += written
            }
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        let millis = now.tv_nsec / 1_000_000
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milli = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(milli)Z"
    }
}

/// Reads a process's output pipe and hands each line to its ``ChildOutput``.
final class LineRelay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let output: ChildOutput
    private var partial: [UInt8] = []

    init(output: ChildOutput) {
        self.output = output
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                self.output.append(String(decoding: self.partial, as: UTF8.self))
                self.partial.removeAll(keepingCapacity: true)
            } else {
                self.partial.append(byte)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.partial.isEmpty {
            self.output.append(String(decoding: self.partial, as: UTF8.self))
            self.partial.removeAll()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
