public import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Logging
import NIOPosix
import ServiceLifecycle

/// The `context-assembler` process: the calls in progress, their events, briefs and handoffs. It answers
/// `baton.context.v1.ContextAssembler` on `$BATON_RUN_DIR/context-assembler.sock`, keeps everything in
/// `$BATON_DATA_DIR/context.sqlite`, and calls the gate-evaluator, the router and the metrics collector on their
/// sockets in the same run directory, one shared connection each.
public struct ContextAssemblerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "context-assembler",
        abstract: "Baton's context-assembler: turns the AI's conversation events into handoffs and briefs."
    )

    @OptionGroup var options: ProcessOptions

    @Option(
        name: .customLong("dependency-timeout"),
        help: ArgumentHelp(
            "How long Record and the handoff methods retry the gate-evaluator and the router before they answer "
                + "UNAVAILABLE, in seconds.",
            valueName: "SECONDS"
        )
    )
    var dependencyTimeout: Double = 5

    public mutating func validate() throws {
        guard self.dependencyTimeout > 0 && self.dependencyTimeout <= 60 else {
            throw ValidationError("--dependency-timeout is \(self.dependencyTimeout); expected 0 < SECONDS <= 60")
        }
    }

    /// The command as the executable's main parses it.
    public init() {}

    public func run() async throws {
        let process = try BatonProcess(name: "context-assembler", options: self.options)
        let run = process.configuration.runDirectory
        // One event loop for the server's connections and the three clients: a Record runs on it (ContextAPI), so
        // its Evaluate and Route start and resume on the thread that read it, with no thread hop. Measured with
        // the context-assembler benchmark: about 15 % less CPU per Record than on two loops and the pool. Like
        // NIO's singleton group it lives as long as the process (the clients close on it as they go).
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = { (name: String) in
            RPCClient(socketPath: BatonConfiguration.socketPath(of: name, in: run), eventLoopGroup: loop)
        }
        let gates = client("gate-evaluator")
        let router = client("router")
        let metrics = client("metrics-collector")
        let prepared = Prepared<ContextCore>("the context store")
        let budget = Duration.milliseconds(Int(self.dependencyTimeout * 1000))
        try await process.run(
            methods: ContextAPI(prepared: prepared).methods,
            eventLoopGroup: loop,
            services: [
                OutboxSender(
                    prepared: prepared,
                    metrics: Baton_Metrics_V1_MetricsCollector.Client(metrics),
                    logger: process.logger
                )
            ]
        ) { _ in
            prepared.set(
                try ContextCore(
                    database: process.configuration.dataDirectory + "/context.sqlite",
                    gates: Baton_Gates_V1_GateEvaluator.Client(gates),
                    router: Baton_Routing_V1_Router.Client(router),
                    logger: process.logger,
                    dependencyBudget: budget
                )
            )
        }
        await gates.close()
        await router.close()
        await metrics.close()
    }
}

/// Sends the outbox's timeline events to the metrics collector, as soon as they are stored and again every
/// second, until each is acknowledged; the collector drops the events it already has.
struct OutboxSender: Service {
    let prepared: Prepared<ContextCore>
    let metrics: Baton_Metrics_V1_MetricsCollector.Client
    let logger: Logger

    func run() async throws {
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            guard let core = self.prepared.ready else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                _ = try await core.flushOutbox(to: self.metrics)
                if failing {
                    self.logger.info("context-assembler: the metrics collector takes timeline events again")
                    failing = false
                }
            } catch {
                if !failing {
                    self.logger.warning(
                        "context-assembler: sending timeline events failed; they stay in the outbox and are retried",
                        metadata: ["baton.error": "\(error)"]
                    )
                    failing = true
                }
            }
            // Woken by the next stored event, or after a second.
            await core.outboxAdded.wait(atMost: failing ? .milliseconds(500) : .seconds(1))
        }
    }
}
