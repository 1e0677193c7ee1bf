import BatonProto
public import BatonRPC
public import Logging
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

    /// Serves `methods` (and Health) on the process's socket until SIGTERM or SIGINT, then drains and returns.
    ///
    /// `prepare` runs after the socket is claimed and before the process reports `SERVING`: open stores and load
    /// configuration there. `services` run beside the server, in the order given, and stop after it.
    public func run(
        methods: RPCMethods,
        services: [any Service] = [],
        prepare: @Sendable (HealthStatusProvider) async throws -> Void = { _ in }
    ) async throws {
        let server = RPCServer(
            configuration: RPCServer.Configuration(
                socketPath: self.configuration.socketPath,
                socketGroup: self.configuration.socketGroup?.id
            ),
            methods: methods,
            logger: self.logger
        )
        try await server.bind()
        do {
            try await prepare(server.health)
        } catch {
            // Give the socket back (the server drains at once and removes its file), then report why.
            server.shutdown()
            try? await server.run()
            throw error
        }
        server.health.setStatus(.serving)
        self.logger.info("serving", metadata: ["baton.pid": "\(getpid())"])
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: (services + [server]).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: self.logger
            )
        )
        try await group.run()
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
