import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What a server holds in frames it has begun to receive and not finished: bounded in time per connection, and in
/// bytes across all of them (issue: a connection that declares a 4 MiB frame and then sends nothing).
///
/// Each connection reports the bytes of its current partial frame as the decoder sees them (0 between frames). A
/// connection whose partial frame makes no progress for ``timeout`` is closed; when the partial frames of all
/// connections together pass ``limit`` bytes, the connections holding the most are closed until they fit. An idle
/// connection between frames holds nothing and is left alone.
final class PartialFrames: Sendable {
    /// How long a partial frame may go without a byte before its connection is closed.
    let timeout: TimeAmount
    /// The most bytes all connections together may hold in partial frames.
    let limit: Int
    private let logger: Logger
    private let state = NIOLockedValueBox((held: [ObjectIdentifier: Held](), total: 0))

    private struct Held {
        var bytes: Int
        let close: @Sendable () -> Void
    }

    init(timeout: TimeAmount, limit: Int, logger: Logger) {
        self.timeout = timeout
        self.limit = limit
        self.logger = logger
    }

    /// Records that `connection` now holds `bytes` of a partial frame; closes the connections holding the most while
    /// the total is over the limit (`connection` itself among them, when it holds the most).
    func update(_ connection: ObjectIdentifier, bytes: Int, close: @escaping @Sendable () -> Void) {
        let evicted = self.state.withLockedValue { state -> [(bytes: Int, close: @Sendable () -> Void)] in
            state.total += bytes - (state.held[connection]?.bytes ?? 0)
            state.held[connection] = bytes > 0 ? Held(bytes: bytes, close: close) : nil
            var evicted: [(bytes: Int, close: @Sendable () -> Void)] = []
            while state.total > self.limit, let largest = state.held.max(by: { $0.value.bytes < $1.value.bytes }) {
                state.held[largest.key] = nil
                state.total -= largest.value.bytes
                evicted.append((largest.value.bytes, largest.value.close))
            }
            return evicted
        }
        for connection in evicted {
            self.logger.warning(
                "closing a connection: partial frames over their limit",
                metadata: ["baton.partial_bytes": "\(connection.bytes)", "baton.limit_bytes": "\(self.limit)"]
            )
            connection.close()
        }
    }

    /// Forgets a connection that closed.
    func remove(_ connection: ObjectIdentifier) {
        self.state.withLockedValue { state in
            if let held = state.held.removeValue(forKey: connection) {
                state.total -= held.bytes
            }
        }
    }

    /// The bytes all connections hold in partial frames now.
    var total: Int {
        self.state.withLockedValue { $0.total }
    }
}

/// One connection's partial frame: reports it to the server's ``PartialFrames`` and closes the connection when it
/// stalls. Lives on the connection's event loop.
///
/// The decoder reports after every read, so every report is progress, even one of the same size (a read that
/// finished a frame and began the next). One timer per connection checks, when it fires, whether the last read is
/// older than the timeout, and otherwise sets itself again for when it would be.
final class PartialFrameWatch {
    private let frames: PartialFrames
    private let channel: any Channel
    private let logger: Logger
    private var held = 0
    private var lastRead = NIODeadline.now()
    private var check: Scheduled<Void>?

    init(frames: PartialFrames, channel: any Channel, logger: Logger) {
        self.frames = frames
        self.channel = channel
        self.logger = logger
        let id = ObjectIdentifier(channel)
        channel.closeFuture.whenComplete { _ in frames.remove(id) }
    }

    /// A read has left the decoder holding `bytes` of an unfinished frame (0: it is between frames).
    func holding(_ bytes: Int) {
        self.lastRead = .now()
        if bytes != self.held {
            self.held = bytes
            let channel = self.channel
            self.frames.update(ObjectIdentifier(channel), bytes: bytes) { channel.close(promise: nil) }
        }
        if bytes > 0 && self.check == nil {
            self.scheduleCheck(at: self.lastRead + self.frames.timeout)
        }
    }

    private func scheduleCheck(at deadline: NIODeadline) {
        let this = NIOLoopBound(self, eventLoop: self.channel.eventLoop)
        self.check = self.channel.eventLoop.scheduleTask(deadline: deadline) {
            this.value.checkProgress()
        }
    }

    private func checkProgress() {
        self.check = nil
        guard self.held > 0 else {
            return
        }
        let due = self.lastRead + self.frames.timeout
        guard NIODeadline.now() >= due else {
            return self.scheduleCheck(at: due)
        }
        self.logger.warning(
            "closing a connection: its partial frame made no progress",
            metadata: [
                "baton.partial_bytes": "\(self.held)",
                "baton.timeout_ms": "\(self.frames.timeout.nanoseconds / 1_000_000)",
            ]
        )
        self.channel.close(promise: nil)
    }
}
