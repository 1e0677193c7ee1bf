import BatonProto
import BatonRuntime
import Logging
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
    /// Whether each line also goes to standard output (not for the supervisor's own log, already on stderr).
    private let echo: Bool
    private let state = NIOLockedValueBox(State())

    private struct State {
        var lines: [Baton_Supervisor_V1_LogLine] = []
        var followers: [Int: AsyncStream<Baton_Supervisor_V1_LogLine>.Continuation] = [:]
        var nextFollower = 0
    }
    private static let terminal = isatty(1) != 0

    /// Output for `name`, its prefix padded to `width` and coloured with `colour` when stdout is a terminal.
    init(name: String, width: Int, colour: Int, echo: Bool = true) {
        self.name = name
        self.echo = echo
        let padded = name + String(repeating: " ", count: max(0, width - name.count))
        self.prefix = Self.terminal ? "\u{1B}[\(31 + colour % 6)m\(padded) |\u{1B}[0m " : "\(padded) | "
    }

    /// The last `count` kept lines (all of them for nil), oldest first.
    func kept(last count: Int? = nil) -> [Baton_Supervisor_V1_LogLine] {
        self.state.withLockedValue { Array($0.lines.suffix(count ?? Self.capacity)) }
    }

    /// The last `count` kept lines and a stream of every later line, taken together so that none is missed.
    /// The stream ends when the consumer's task is cancelled.
    func follow(last count: Int?) -> ([Baton_Supervisor_V1_LogLine], AsyncStream<Baton_Supervisor_V1_LogLine>) {
        let (stream, continuation) = AsyncStream<Baton_Supervisor_V1_LogLine>.makeStream(
            bufferingPolicy: .bufferingNewest(Self.capacity)
        )
        let (kept, id) = self.state.withLockedValue { state in
            defer { state.nextFollower += 1 }
            state.followers[state.nextFollower] = continuation
            return (Array(state.lines.suffix(count ?? Self.capacity)), state.nextFollower)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.followers.removeValue(forKey: id) }
        }
        return (kept, stream)
    }

    /// Records one line of the process's output and relays it.
    func append(_ line: String) {
        var record = Baton_Supervisor_V1_LogLine()
        record.name = self.name
        record.text = line
        record.unixMs = Self.nowUnixMs()
        let followers = self.state.withLockedValue { state in
            state.lines.append(record)
            if state.lines.count > Self.capacity {
                state.lines.removeFirst(state.lines.count - Self.capacity)
            }
            return Array(state.followers.values)
        }
        for follower in followers {
            follower.yield(record)
        }
        guard self.echo else {
            return
        }
        let stamp = Self.terminal || Self.isStamped(line) ? "" : Self.timestamp() + " "
        StandardStream.writeLine(stamp + self.prefix + line)
    }

    /// Whether `line` begins with its own time, as Baton's processes' log lines do ("2026-12-01T09:30:00..."):
    /// those get no second one.
    static func isStamped(_ line: String) -> Bool {
        let head = Array(line.utf8.prefix(19))
        guard head.count == 19 else {
            return false
        }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        return digits.allSatisfy { head[$0] >= UInt8(ascii: "0") && head[$0] <= UInt8(ascii: "9") }
            && head[4] == UInt8(ascii: "-") && head[7] == UInt8(ascii: "-") && head[10] == UInt8(ascii: "T")
            && head[13] == UInt8(ascii: ":") && head[16] == UInt8(ascii: ":")
    }

    static func nowUnixMs() -> Int64 {
        Timestamp.nowUnixMs()
    }

    static func timestamp() -> String {
        Timestamp.iso8601(unixMs: Self.nowUnixMs())
    }
}

/// Keeps the supervisor's own log lines (its restarts, "giving up") in a ``ChildOutput``, so that
/// `batonctl logs supervisor` reads them back as it reads a process's.
struct KeptLogHandler: LogHandler {
    let output: ChildOutput
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        self.output.append("\(ChildOutput.timestamp()) \(event.level) \(self.label):\(fields) \(event.message)")
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
