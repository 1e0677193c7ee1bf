public import ArgumentParser
import BatonRPC
import BatonRuntime

/// The `context-assembler` process: it will own calls in progress, their events and briefs (docs/ARCHITECTURE.md, "Processes").
///
/// For now it serves only `grpc.health.v1.Health` on `$BATON_RUN_DIR/context-assembler.sock`; its own API comes with
/// its own issue.
public struct ContextAssemblerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "context-assembler",
        abstract:
            "Baton's context-assembler: serves Health on $BATON_RUN_DIR/context-assembler.sock until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ProcessOptions

    /// The command as the executable's main parses it.
    public init() {}

    public func run() async throws {
        let process = try BatonProcess(name: "context-assembler", options: self.options)
        try await process.run(methods: RPCMethods())
    }
}
