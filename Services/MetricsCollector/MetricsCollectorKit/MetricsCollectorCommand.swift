public import ArgumentParser
import BatonRPC
import BatonRuntime
import Logging
import ServiceLifecycle

/// The `metrics-collector` process: every handoff's timeline and its figures. It answers
/// `baton.metrics.v1.MetricsCollector` on `$BATON_RUN_DIR/metrics-collector.sock` and keeps the events in
/// `$BATON_DATA_DIR/metrics.sqlite`.
public struct MetricsCollectorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "metrics-collector",
        abstract: "Baton's metrics collector: handoff timelines, time-to-context-ready, time-to-live-human, repeats."
    )

    @OptionGroup var options: ProcessOptions

    @Option(help: "Seconds after its start that a handoff nobody greeted counts as abandoned.")
    var abandonAfter: Int = 120

    @Option(help: "A greeting later than this many seconds after the gate fired makes a failover.")
    var maxLiveHuman: Double = HandoffTargets.maxLiveHumanSeconds

    @Option(help: "Keep each handoff this long after it started (30d, 12h, 90m), or all; older ones are pruned.")
    var retention = "30d"

    /// The command as the executable's main parses it.
    public init() {}

    public func validate() throws {
        guard self.abandonAfter > 0 else {
            throw ValidationError("--abandon-after is \(self.abandonAfter); expected a number of seconds above 0")
        }
        guard self.maxLiveHuman > 0 else {
            throw ValidationError("--max-live-human is \(self.maxLiveHuman); expected a number of seconds above 0")
        }
        guard DurationText.seconds(self.retention) != nil else {
            throw ValidationError(
                "--retention is '\(self.retention)'; expected a number with s, m, h or d (30d, 12h), or all"
            )
        }
    }

    public func run() async throws {
        let process = try BatonProcess(name: "metrics-collector", options: self.options)
        let judging = Judging(
            maxLiveHumanMs: Int64((self.maxLiveHuman * 1000).rounded()),
            abandonAfterMs: Int64(self.abandonAfter) * 1000
        )
        let retention = DurationText.seconds(self.retention).flatMap { $0 == 0 ? nil : Duration.seconds($0) }
        let prepared = Prepared<MetricsCore>("the event store")
        try await process.run(
            methods: MetricsAPI(prepared: prepared).methods,
            services: [RetentionPruner(prepared: prepared, logger: process.logger)]
        ) { _ in
            let core = try MetricsCore(
                database: process.configuration.dataDirectory + "/metrics.sqlite",
                judging: judging,
                retention: retention,
                logger: process.logger
            )
            // Serving from here on: events are recorded at once, and the figures wait for the history.
            try await core.beginLoading()
            prepared.set(core)
        }
    }
}

/// Prunes the handoffs older than the retention window once the history is loaded, then every minute.
struct RetentionPruner: Service {
    let prepared: Prepared<MetricsCore>
    let logger: Logger

    func run() async throws {
        // The sleep between passes ends at once on graceful shutdown.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                guard let core = self.prepared.ready else {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                do {
                    try await core.prune()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.error(
                        "metrics-collector: pruning failed, will retry",
                        metadata: ["baton.error": "\(error)"]
                    )
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
    }
}
