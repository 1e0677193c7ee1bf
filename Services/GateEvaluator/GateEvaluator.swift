import ArgumentParser
import BatonRPC
import BatonRuntime

/// The `gate-evaluator` process: it will own workflows and the human gates they declare (ARCHITECTURE.md, "Processes").
///
/// For now it serves only `grpc.health.v1.Health` on `$BATON_RUN_DIR/gate-evaluator.sock`; its own API comes with
/// its own issue.
@main
struct GateEvaluatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate-evaluator",
        abstract: "Baton's gate-evaluator: serves Health on $BATON_RUN_DIR/gate-evaluator.sock until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let process = try BatonProcess(name: "gate-evaluator", options: self.options)
        try await process.run(methods: RPCMethods())
    }
}
