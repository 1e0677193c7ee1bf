public import Logging
import NIOConcurrencyHelpers

/// A log handler that keeps every line, so a test can assert what a server logged and how often.
public final class LogRecorder: Sendable {
    private let lines = NIOLockedValueBox<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    /// A recorder with no lines yet.
    public init() {}

    /// A logger whose lines (at `level` and above) this recorder keeps.
    public func logger(label: String = "test", level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: label) { _ in Handler(recorder: self) }
        logger.logLevel = level
        return logger
    }

    /// The messages logged at `level`, each followed by its metadata.
    public func messages(at level: Logger.Level) -> [String] {
        self.lines.withLockedValue { lines in
            lines.filter { $0.level == level }.map { line in
                line.message + " "
                    + line.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: " ")
            }
        }
    }

    fileprivate func record(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        self.lines.withLockedValue { $0.append((level, message, metadata)) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.recorder.record(event.level, "\(event.message)", self.metadata.merging(event.metadata ?? [:]) { $1 })
        }
    }
}
