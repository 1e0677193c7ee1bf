public import BatonRPC
import Logging

/// Serves `methods` (and Health, `SERVING`) from this process on a real socket in a fresh temporary directory for
/// the duration of `body`, with a client connected to it; then closes the client, shuts the server down and
/// removes the directory. The way to test a service's handlers without starting its executable.
public func withServer(
    _ methods: RPCMethods,
    recorder: LogRecorder = LogRecorder(),
    gracePeriod: Duration = .seconds(2),
    configure: (inout RPCServer.Configuration) -> Void = { _ in },
    _ body: (_ client: RPCClient, _ server: RPCServer) async throws -> Void
) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    var configuration = RPCServer.Configuration(
        socketPath: directory.appending("server.sock"),
        shutdownGracePeriod: gracePeriod
    )
    configure(&configuration)
    let server = RPCServer(
        configuration: configuration,
        methods: methods,
        logger: recorder.logger(label: "in-process-server")
    )
    try await server.bind()
    server.health.setStatus(.serving)
    let client = RPCClient(socketPath: server.configuration.socketPath, logger: recorder.logger(label: "client"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            try await body(client, server)
        } catch {
            await client.close()
            server.shutdown()
            try? await group.waitForAll()
            throw error
        }
        await client.close()
        server.shutdown()
        try await group.waitForAll()
    }
}

/// Runs an ``EchoService`` as ``withServer(_:recorder:gracePeriod:configure:_:)`` does, handing `body` the socket's
/// path.
public func withEchoServer(
    recorder: LogRecorder = LogRecorder(),
    gracePeriod: Duration = .seconds(2),
    configure: (inout RPCServer.Configuration) -> Void = { _ in },
    _ body: (_ socketPath: String, _ echo: EchoService, _ server: RPCServer) async throws -> Void
) async throws {
    let echo = EchoService()
    try await withServer(echo.methods, recorder: recorder, gracePeriod: gracePeriod, configure: configure) {
        _,
        server in
        try await body(server.configuration.socketPath, echo, server)
    }
}
