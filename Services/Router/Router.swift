import ArgumentParser
import BatonRPC
import BatonRuntime

/// The `router` process: it will own destinations, their availability and reservations (ARCHITECTURE.md, "Processes").
///
/// For now it serves only `grpc.health.v1.Health` on `$BATON_RUN_DIR/router.sock`; its own API comes with
/// its own issue.
@main
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Baton's router: serves Health on $BATON_RUN_DIR/router.sock until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let process = try BatonProcess(name: "router", options: self.options)
        try await process.run(methods: RPCMethods())
    }
}
