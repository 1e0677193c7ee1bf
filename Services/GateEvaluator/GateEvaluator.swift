import ArgumentParser
import BatonRPC
import BatonRuntime
import Logging
import ServiceLifecycle
import UnixSignals

/// The `gate-evaluator` process: loads the workflows and answers `baton.gates.v1.GateEvaluator` on
/// `$BATON_RUN_DIR/gate-evaluator.sock`. Workflows reload on `Reload`, on SIGHUP, and when a file changes.
@main
struct GateEvaluatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate-evaluator",
        abstract: "Baton's gate-evaluator: decides, from the workflows, when a human must appear.",
        subcommands: [GateEvaluatorBenchmark.self]
    )

    @OptionGroup var options: ProcessOptions

    @Option(help: "Directory of the configuration (default: $BATON_CONFIG_DIR, else config); workflows in workflows/.")
    var configDir: String?

    func run() async throws {
        let process = try BatonProcess(name: "gate-evaluator", options: self.options)
        let configDirectory = self.configDir ?? ProcessEnvironment.current["BATON_CONFIG_DIR"] ?? "config"
        let library = WorkflowLibrary(directory: configDirectory + "/workflows", logger: process.logger)
        try library.reload()
        try await process.run(
            methods: GatesAPI(library: library).methods,
            services: [WorkflowWatcher(library: library, logger: process.logger)]
        )
    }
}

/// Reloads the workflows on SIGHUP and when a file in their directory changes (checked every second).
struct WorkflowWatcher: Service {
    let library: WorkflowLibrary
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in hangups.cancelOnGracefulShutdown() {
                    self.logger.info("SIGHUP: reloading workflows")
                    _ = try? self.library.reload()
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .seconds(1))
                    if self.library.changedOnDisk() {
                        self.logger.info("workflow files changed: reloading")
                        _ = try? self.library.reload()
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
