public import BatonRPC
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs one Baton process: its RPC server, and any other services, in one `ServiceGroup` that shuts down
/// gracefully on SIGTERM or SIGINT.
public struct BatonProcess: Sendable {
    /// The resolved configuration.
    public let configuration: BatonConfiguration
    /// The process's logger, labelled with its name.
    public let logger: Logger
    /// The running group, for ``shutdown()``.
    private let group = NIOLockedValueBox<ServiceGroup?>(nil)

    /// Resolves the configuration from `options` and the environment, creates the run and data directories, and
    /// bootstraps logging to standard error. The executable owns logging: call this once, from `main`.
    public init(name: String, options: ProcessOptions) throws {
        let configuration = try BatonConfiguration.resolve(
            processName: name,
            options: options,
            environment: ProcessEnvironment.current
        )
        do {
            try SocketFile.createDirectory(configuration.runDirectory, group: configuration.socketGroup?.id)
        } catch {
            throw ConfigurationError("run directory '\(configuration.runDirectory)': \(error)")
        }
        do {
            try SocketFile.createDirectory(configuration.dataDirectory)
        } catch {
            throw ConfigurationError("data directory '\(configuration.dataDirectory)': \(error)")
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "baton.\(name)")
        logger[metadataKey: "baton.process"] = "\(name)"
        self.configuration = configuration
        self.logger = logger
    }

    /// Serves `methods` (and Health) on the process's socket until SIGTERM, SIGINT or ``shutdown()``, then drains
    /// and returns.
    ///
    /// Everything runs in one `ServiceGroup`, whose signal handlers are in place before the socket is claimed: a
    /// signal at any moment after that drains the process and removes its socket. In order:
    /// 1. the socket is claimed (a second instance is refused here, before it touches anything);
    /// 2. `prepare` runs: open stores and load configuration there. Meanwhile Health says `NOT_SERVING` and every
    ///    other method answers `UNAVAILABLE`. A signal during it lets it finish, then drains at once; if it
    ///    throws, the socket is given back and the error returned;
    /// 3. the process reports `SERVING`.
    ///
    /// The server's connections run on `eventLoopGroup`. `services` run beside the server and stop after it has
    /// drained (background work its handlers rely on). `stoppingFirst` run beside it too and stop before it drains,
    /// while it still answers (the supervisor's processes, whose status stays answerable while they stop).
    public func run(
        methods: RPCMethods,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        services: [any Service] = [],
        stoppingFirst: [any Service] = [],
        prepare: @escaping @Sendable (HealthStatusProvider) async throws -> Void = { _ in }
    ) async throws {
        let server = RPCServer(
            configuration: RPCServer.Configuration(
                socketPath: self.configuration.socketPath,
                socketGroup: self.configuration.socketGroup?.id,
                stalledFrameTimeout: self.configuration.stalledFrameTimeout
            ),
            methods: methods,
            eventLoopGroup: eventLoopGroup,
            logger: self.logger
        )
        let serving = ServingProcess(server: server, prepare: prepare, logger: self.logger)
        // A service group shuts its services down in the reverse of this order.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: (services + [serving] + stoppingFirst).map {
                    ServiceGroupConfiguration.ServiceConfiguration(service: $0)
                },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: self.logger
            )
        )
        self.group.withLockedValue { $0 = group }
        try await group.run()
    }

    /// Drains and stops the running process, as SIGTERM does (the supervisor's `Shutdown` call).
    public func shutdown() async {
        await self.group.withLockedValue { $0 }?.triggerGracefulShutdown()
    }
}

/// The RPC server's life inside the group: claim the socket, prepare, serve until graceful shutdown, drain.
struct ServingProcess: Service {
    let server: RPCServer
    let prepare: @Sendable (HealthStatusProvider) async throws -> Void
    let logger: Logger

    func run() async throws {
        try await self.server.bind()
        do {
            try await self.prepare(self.server.health)
        } catch {
            // Give the socket back (the server drains at once and removes its file), then report why.
            self.server.shutdown()
            try? await self.server.run()
            throw error
        }
        // A signal during preparation has already asked the group to shut down: then `run` drains at once, and the
        // process never says SERVING.
        if !Task.isShuttingDownGracefully {
            self.server.health.setStatus(.serving)
            self.logger.info("serving", metadata: ["baton.pid": "\(getpid())"])
        }
        try await self.server.run()
    }
}

/// The process's environment variables, read once.
public enum ProcessEnvironment {
    /// `environ` as a dictionary.
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }
}
