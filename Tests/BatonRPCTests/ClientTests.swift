import BatonProto
import BatonRPC
import BatonTestKit
import Logging
import NIOCore
import NIOPosix
import Testing

/// The client library: failing fast, waiting for the server, reconnecting, and Health.
@Suite("Client")
struct ClientTests {
    let check = Grpc_Health_V1_Health.Method.check

    func health(_ client: RPCClient, options: CallOptions = CallOptions()) async throws -> HealthStatusProvider.Status {
        try await client.unary(
            self.check,
            Grpc_Health_V1_HealthCheckRequest(),
            options: options
        ).status
    }

    func server(at path: String) -> RPCServer {
        RPCServer(configuration: .init(socketPath: path), methods: RPCMethods(), logger: Logger(label: "client-tests"))
    }

    @Test("a call while the server is down fails fast with UNAVAILABLE")
    func failsFast() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let client = RPCClient(socketPath: directory.appending("nobody.sock"))
        // With a 60 s deadline, a call that waited for the server would end DEADLINE_EXCEEDED after a minute; one
        // that fails fast ends UNAVAILABLE long before (the bound is generous so that a loaded machine passes).
        let clock = ContinuousClock()
        let started = clock.now
        let error = await #expect(throws: RPCError.self) {
            try await self.health(client, options: CallOptions(timeout: .seconds(60)))
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("nobody.sock") == true)
        #expect(clock.now - started < .seconds(30))
        await client.close()
    }

    @Test("a call that waits for the server succeeds once it starts, and times out if it never does")
    func waitsForReady() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("late.sock")
        let client = RPCClient(socketPath: path)
        let error = await #expect(throws: RPCError.self) {
            try await self.health(client, options: CallOptions(timeout: .milliseconds(200), waitForReady: true))
        }
        #expect(error?.code == .deadlineExceeded)

        async let status = self.health(client, options: CallOptions(timeout: .seconds(20), waitForReady: true))
        try await Task.sleep(for: .milliseconds(100))
        let server = self.server(at: path)
        // SERVING before the socket exists, so that the waiting call cannot land between the two.
        server.health.setStatus(.serving)
        try await server.bind()
        #expect(try await status == .serving)
        await client.close()
        server.shutdown()
        try await server.run()
    }

    @Test("the same client reconnects by itself after the server restarts")
    func reconnects() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("restart.sock")
        let client = RPCClient(socketPath: path)
        for round in 1...3 {
            let server = self.server(at: path)
            try await server.bind()
            server.health.setStatus(.serving)
            // A request written in the instant the previous server was closing its connections is reported lost
            // (UNAVAILABLE): the client cannot know whether it ran. Once through, the client stays through.
            let reconnected = await eventually {
                let options = CallOptions(timeout: .seconds(5), waitForReady: true)
                return (try? await self.health(client, options: options)) == .serving
            }
            #expect(reconnected, "round \(round)")
            for _ in 0..<20 {
                let status = try await self.health(client)
                #expect(status == .serving, "round \(round)")
            }
            server.shutdown()
            try await server.run()
        }
        await client.close()
    }

    @Test("a server that accepts and closes at once gets UNAVAILABLE, not a hang")
    func closedAtOnce() async throws {
        struct Refuse: Error {}
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("rude.sock")
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeFailedFuture(Refuse()) }
            .bind(unixDomainSocketPath: path)
            .get()
        let client = RPCClient(socketPath: path)
        for _ in 0..<20 {
            let error = await #expect(throws: RPCError.self) {
                try await self.health(client, options: CallOptions(timeout: .seconds(60)))
            }
            #expect(error?.code == .unavailable, "\(String(describing: error))")
        }
        await client.close()
        try await listener.close()
    }

    @Test("Health/Check answers for the process and NOT_FOUND for an unknown service")
    func healthCheck() async throws {
        try await withEchoServer { socket, _, server in
            let client = RPCClient(socketPath: socket)
            let before = try await self.health(client)
            #expect(before == .serving)
            server.health.setStatus(.notServing)
            let after = try await self.health(client)
            #expect(after == .notServing)
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = "baton.nothing.v1.Nothing"
            let error = await #expect(throws: RPCError.self) {
                try await client.unary(self.check, request)
            }
            #expect(error?.code == .notFound)
            await client.close()
        }
    }

    @Test("Health/Watch streams the status now and at each change, and NOT_SERVING when the server drains")
    func healthWatch() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = self.server(at: directory.appending("watch.sock"))
        try await server.bind()
        server.health.setStatus(.serving)
        async let running: Void = server.run()
        let client = RPCClient(socketPath: server.configuration.socketPath)
        let stream = try client.serverStream(
            Grpc_Health_V1_Health.Method.watch,
            Grpc_Health_V1_HealthCheckRequest(),
        )
        var seen: [HealthStatusProvider.Status] = []
        var ending: RPCError?
        do {
            for try await reply in stream {
                seen.append(reply.status)
                if seen == [.serving] {
                    server.health.setStatus(.notServing)
                } else if seen == [.serving, .notServing] {
                    server.health.setStatus(.serving)
                } else if seen.count == 3 {
                    server.shutdown()
                }
            }
        } catch let error as RPCError {
            ending = error
        }
        #expect(seen == [.serving, .notServing, .serving, .notServing], "ended with \(String(describing: ending))")
        #expect(ending?.code == .unavailable)
        try await running
        await client.close()
    }

    @Test("shutdown lets an in-flight call finish within the grace period")
    func gracefulDrain() async throws {
        try await withEchoServer { socket, echo, server in
            let client = RPCClient(socketPath: socket)
            var request = Baton_Testing_V1_EchoRequest()
            request.text = "slow"
            request.tag = "slow"
            request.delayMs = 500
            async let reply = client.unary(Baton_Testing_V1_Echo.Method.echo, request)
            #expect(await eventually { echo.hasStarted("slow") })
            server.shutdown()
            let text = try await reply.text
            #expect(text == "slow")
            await client.close()
        }
    }
}
