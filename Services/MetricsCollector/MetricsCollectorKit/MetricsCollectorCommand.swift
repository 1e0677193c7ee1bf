public import ArgumentParser
import BatonRPC
import BatonRuntime

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

    /// The command as the executable's main parses it.
    public init() {}

    public func validate() throws {
        guard self.abandonAfter > 0 else {
            throw ValidationError("--abandon-after is \(self.abandonAfter); expected a number of seconds above 0")
        }
        guard self.maxLiveHuman > 0 else {
            throw ValidationError("--max-live-human is \(self.maxLiveHuman); expected a number of seconds above 0")
        }
    }

    public func run() async throws {
        let process = try BatonProcess(name: "metrics-collector", options: self.options)
        let judging = Judging(
            maxLiveHumanMs: Int64((self.maxLiveHuman * 1000).rounded()),
            abandonAfterMs: Int64(self.abandonAfter) * 1000
        )
        let prepared = Prepared<MetricsCore>("the event store")
        try await process.run(methods: MetricsAPI(prepared: prepared).methods) { _ in
            prepared.set(
                try MetricsCore(
                    database: process.configuration.dataDirectory + "/metrics.sqlite",
                    judging: judging,
                    logger: process.logger
                )
            )
        }
    }
}
