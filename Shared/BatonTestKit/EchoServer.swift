import BatonProto
public import BatonRPC
import Logging

/// Runs an ``EchoService`` on a real socket in a fresh temporary directory for the duration of `body`, then shuts
/// the server down and removes the directory.
public func withEchoServer(
    recorder: LogRecorder = LogRecorder(),
    gracePeriod: Duration = .seconds(2),
    _ body: (_ socketPath: String, _ echo: EchoService, _ server: RPCServer) async throws -> Void
) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let echo = EchoService()
    let server = RPCServer(
        configuration: RPCServer.Configuration(
            socketPath: directory.appending("echo.sock"),
            shutdownGracePeriod: gracePeriod
        ),
        methods: echo.methods,
        logger: recorder.logger(label: "echo-server")
    )
    try await server.bind()
    server.health.setStatus(.serving)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            try await body(server.configuration.socketPath, echo, server)
        } catch {
            server.shutdown()
            try? await group.waitForAll()
            throw error
        }
        server.shutdown()
        try await group.waitForAll()
    }
}
