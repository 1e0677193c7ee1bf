public import ArgumentParser

/// `--watch-interval`: how often a process that reloads its configuration checks the files for changes.
public struct WatchOptions: ParsableArguments, Sendable {
    @Option(
        help:
            "Seconds between checks of the configuration files for changes; 0 turns the checks off (SIGHUP and Reload still reload)."
    )
    public var watchInterval: Double = 1

    public init() {}

    public func validate() throws {
        guard self.watchInterval >= 0 && self.watchInterval <= 3600 else {
            throw ValidationError("--watch-interval is \(self.watchInterval); expected seconds from 0 (off) to 3600")
        }
    }

    /// The interval for ``ConfigurationWatcher``: nil when the checks are off.
    public var interval: Duration? {
        self.watchInterval > 0 ? .milliseconds(Int64(self.watchInterval * 1000)) : nil
    }
}
