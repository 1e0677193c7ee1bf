import ArgumentParser
import BatonRPC
import BatonRuntime

/// The `metrics-collector` process: it will own handoff timelines and their figures (ARCHITECTURE.md, "Processes").
///
/// For now it serves only `grpc.health.v1.Health` on `$BATON_RUN_DIR/metrics-collector.sock`; its own API comes with
/// its own issue.
@main
struct MetricsCollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-collector",
        abstract:
            "Baton's metrics-collector: serves Health on $BATON_RUN_DIR/metrics-collector.sock until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let process = try BatonProcess(name: "metrics-collector", options: self.options)
        try await process.run(methods: RPCMethods())
    }
}
