public import ArgumentParser
import BatonRPC
import BatonRuntime
import Logging

/// The `gate-evaluator` process: loads the workflows and answers `baton.gates.v1.GateEvaluator` on
/// `$BATON_RUN_DIR/gate-evaluator.sock`. Workflows reload on `Reload`, on SIGHUP, and when a file changes.
public struct GateEvaluatorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gate-evaluator",
        abstract: "Baton's gate-evaluator: decides, from the workflows, when a human must appear."
    )

    @OptionGroup var options: ProcessOptions

    @OptionGroup var watching: WatchOptions

    /// The command as the executable's main parses it.
    public init() {}

    public func run() async throws {
        let process = try BatonProcess(name: "gate-evaluator", options: self.options)
        let library = WorkflowLibrary(
            directory: process.configuration.configDirectory + "/workflows",
            copies: LastValidCopies(directory: process.configuration.dataDirectory + "/gate-evaluator.last-valid"),
            logger: process.logger
        )
        // Loaded once the socket is ours, so that a second instance is refused before it reads anything.
        let prepared = Prepared<WorkflowLibrary>("the workflows")
        try await process.run(
            methods: GatesAPI(prepared: prepared).methods,
            services: [
                ConfigurationWatcher(
                    "workflows",
                    interval: self.watching.interval,
                    logger: process.logger,
                    // Not before the first load: a second instance, refused at its socket, must touch nothing.
                    changedOnDisk: { prepared.ready != nil && library.changedOnDisk() },
                    reload: { _ = try? library.reload() }
                )
            ]
        ) { _ in
            let problems = try library.reload()
            // Refused rather than serving nothing: every call would fail NOT_FOUND while health said SERVING.
            if library.all.isEmpty && !problems.isEmpty {
                throw ConfigurationError(
                    "no workflow validates and none has a last valid version to serve: "
                        + problems.map(\.description).joined(separator: "; ")
                )
            }
            prepared.set(library)
        }
    }
}
