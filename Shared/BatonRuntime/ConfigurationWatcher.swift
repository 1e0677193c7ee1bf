public import Logging
public import ServiceLifecycle
import UnixSignals

/// Reloads a configuration on SIGHUP and when its files change on disk (checked every `interval`, unless it is
/// nil), until graceful shutdown. `reload` logs its own outcome; the watcher only says why it reloads.
public struct ConfigurationWatcher: Service {
    let what: String
    let interval: Duration?
    let changedOnDisk: @Sendable () -> Bool
    let reload: @Sendable () -> Void
    let logger: Logger

    /// - Parameters:
    ///   - what: what is reloaded, for the log ("workflows", "destinations").
    public init(
        _ what: String,
        interval: Duration? = .seconds(1),
        logger: Logger,
        changedOnDisk: @escaping @Sendable () -> Bool,
        reload: @escaping @Sendable () -> Void
    ) {
        self.what = what
        self.interval = interval
        self.changedOnDisk = changedOnDisk
        self.reload = reload
        self.logger = logger
    }

    public func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in hangups.cancelOnGracefulShutdown() {
                    self.logger.info("SIGHUP: reloading", metadata: ["baton.config": "\(self.what)"])
                    self.reload()
                }
            }
            if let interval = self.interval {
                group.addTask {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        try? await Task.sleep(for: interval)
                        if self.changedOnDisk() {
                            self.logger.info("changed on disk: reloading", metadata: ["baton.config": "\(self.what)"])
                            self.reload()
                        }
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
