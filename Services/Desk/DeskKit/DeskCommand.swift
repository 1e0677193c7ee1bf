public import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// The `desk` process: Baton over HTTP. It holds nothing durable; every answer comes from the other processes over
/// the wire protocol. It serves `/healthz`, `/readyz`, `/metrics` (for Prometheus) and the JSON API for integrators
/// that can only call webhooks, and answers Health on `$BATON_RUN_DIR/desk.sock` like every process.
public struct DeskCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "desk",
        abstract: "Baton's desk: HTTP for the agents, the operators and webhook-only integrators.",
        discussion: """
            The JSON API (/v1/...) takes a bearer token: the value of $BATON_DESK_API_TOKEN (at least 16
            characters). Without it, the API answers 401 and says so; /healthz, /readyz and /metrics need no token.
            """
    )

    @OptionGroup var options: ProcessOptions

    @Option(help: "The address to listen on (default: $BATON_DESK_HTTP_HOST, else 127.0.0.1).")
    var httpHost: String?

    @Option(help: "The port to listen on (default: $BATON_DESK_HTTP_PORT, else 8080; 0 picks a free one).")
    var httpPort: Int?

    /// The command as the executable's main parses it.
    public init() {}

    public func run() async throws {
        let environment = ProcessEnvironment.current
        let host = self.httpHost ?? environment["BATON_DESK_HTTP_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let portText = self.httpPort.map(String.init) ?? environment["BATON_DESK_HTTP_PORT"] ?? "8080"
        guard let port = Int(portText), (0...65_535).contains(port) else {
            throw ValidationError("the HTTP port is '\(portText)'; expected a number from 0 to 65535")
        }
        let token = environment["BATON_DESK_API_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let token, token.count < 16 {
            throw ValidationError(
                "BATON_DESK_API_TOKEN has \(token.count) characters; expected at least 16 (a random string)"
            )
        }
        let process = try BatonProcess(name: "desk", options: self.options)
        let configuration = process.configuration
        let agents = try AgentsFile.load(from: configuration.configDirectory)
        let backends = Backends(runDirectory: configuration.runDirectory)
        let router = Router()
        let figures = DeskFigures()
        router.add(middleware: figures)
        Observability(backends: backends, figures: figures).register(on: router)
        IntegratorAPI(backends: backends, token: token).register(on: router)
        let desk = AgentDesk(
            backends: backends,
            agents: agents,
            sessions: try Sessions(dataDirectory: configuration.dataDirectory)
        )
        desk.register(on: router)
        let webSockets = Router(context: BasicWebSocketRequestContext.self)
        desk.registerWebSocket(on: webSockets)
        let logger = process.logger
        let application = Application(
            router: router,
            server: GuardedWebSocketChannel.builder(
                webSockets: webSockets,
                configuration: .init(ws: .init(maxFrameSize: 1 << 20, autoPing: .enabled(timePeriod: .seconds(15))))
            ) { head in desk.refusal(head) },
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "baton-desk"),
            onServerRunning: { channel in
                logger.info(
                    "desk: serving HTTP",
                    metadata: ["baton.address": "\(channel.localAddress.map { "\($0)" } ?? "\(host):\(port)")"]
                )
            },
            logger: logger
        )
        if agents == nil {
            logger.notice(
                "desk: no \(AgentsFile.name) in \(configuration.configDirectory); nobody can sign in to the agent screen"
            )
        }
        if token == nil {
            logger.notice("desk: BATON_DESK_API_TOKEN is not set; the /v1 API answers 401 until it is")
        }
        try await process.run(methods: RPCMethods(), services: [application, backends])
    }
}

/// The desk's connections to the other processes: one shared client each, closed when the desk stops.
final class Backends: Service, Sendable {
    let clients: [String: RPCClient]

    init(runDirectory: String) {
        var logger = Logger(label: "baton.desk.client")
        logger.logLevel = .warning
        self.clients = Dictionary(
            uniqueKeysWithValues: ["context-assembler", "metrics-collector", "router", "supervisor"].map {
                ($0, RPCClient(socketPath: BatonConfiguration.socketPath(of: $0, in: runDirectory), logger: logger))
            }
        )
    }

    var assembler: Baton_Context_V1_ContextAssembler.Client {
        Baton_Context_V1_ContextAssembler.Client(self.clients["context-assembler"]!)
    }

    var metrics: Baton_Metrics_V1_MetricsCollector.Client {
        Baton_Metrics_V1_MetricsCollector.Client(self.clients["metrics-collector"]!)
    }

    var router: Baton_Routing_V1_Router.Client {
        Baton_Routing_V1_Router.Client(self.clients["router"]!)
    }

    var supervisor: Baton_Supervisor_V1_Supervisor.Client {
        Baton_Supervisor_V1_Supervisor.Client(self.clients["supervisor"]!)
    }

    /// The processes `/readyz` needs SERVING: the ones the desk's answers come from.
    static let required = ["context-assembler", "metrics-collector"]

    /// Waits for the graceful shutdown, then closes the clients.
    func run() async throws {
        try? await gracefulShutdown()
        for client in self.clients.values {
            await client.close()
        }
    }

    /// A deadline for each call made on behalf of an HTTP request.
    static let options = CallOptions(timeout: .seconds(10))
}
