public import BatonRPC
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where a Baton process keeps its socket and its data, and how much it logs: filled from flags and `BATON_*`
/// environment variables, validated once at start-up.
public struct BatonConfiguration: Sendable, Equatable {
    /// The process's name: its socket is `<runDirectory>/<processName>.sock`.
    public var processName: String
    /// Where sockets live (`--run-dir`, `BATON_RUN_DIR`, default `var/run`), relative to the working directory.
    public var runDirectory: String
    /// Where databases live (`--data-dir`, `BATON_DATA_DIR`, default `var/data`).
    public var dataDirectory: String
    /// Where the configuration files live (`--config-dir`, `BATON_CONFIG_DIR`, default `config`): `workflows/` for
    /// the gate-evaluator, `destinations.yaml` for the router.
    public var configDirectory: String
    /// The lowest level logged (`--log-level`, `BATON_LOG_LEVEL`, default `info`).
    public var logLevel: Logger.Level
    /// The group whose members may connect too (`BATON_SOCKET_GROUP`), by name and id.
    public var socketGroup: SocketGroup?
    /// How long a connection's unfinished frame may go without a byte (`BATON_STALLED_FRAME_TIMEOUT`, seconds,
    /// default 10).
    public var stalledFrameTimeout: Duration = .seconds(10)

    /// A group named by `BATON_SOCKET_GROUP`, resolved to its id.
    public struct SocketGroup: Sendable, Equatable {
        /// The group's name as given.
        public var name: String
        /// The group's id on this system.
        public var id: UInt32
    }

    /// The default run directory, relative to the working directory.
    public static let defaultRunDirectory = "var/run"
    /// The default data directory, relative to the working directory.
    public static let defaultDataDirectory = "var/data"
    /// The default configuration directory, relative to the working directory.
    public static let defaultConfigDirectory = "config"

    /// The socket this process listens on.
    public var socketPath: String {
        Self.socketPath(of: self.processName, in: self.runDirectory)
    }

    /// The socket of the process `name` in `runDirectory`.
    public static func socketPath(of name: String, in runDirectory: String) -> String {
        (runDirectory.hasSuffix("/") ? runDirectory : runDirectory + "/") + name + ".sock"
    }

    /// Resolves the configuration: a flag wins over its environment variable, which wins over the default.
    /// Throws ``ConfigurationError`` naming the first setting whose value is not acceptable.
    public static func resolve(
        processName: String,
        options: ProcessOptions,
        environment: [String: String]
    ) throws(ConfigurationError) -> Self {
        let runDirectory = try Self.directory(
            options.runDir,
            flag: "--run-dir",
            variable: "BATON_RUN_DIR",
            environment: environment,
            default: Self.defaultRunDirectory
        )
        let dataDirectory = try Self.directory(
            options.dataDir,
            flag: "--data-dir",
            variable: "BATON_DATA_DIR",
            environment: environment,
            default: Self.defaultDataDirectory
        )
        let configDirectory = try Self.directory(
            options.configDir,
            flag: "--config-dir",
            variable: "BATON_CONFIG_DIR",
            environment: environment,
            default: Self.defaultConfigDirectory
        )
        let levelText = options.logLevel ?? environment["BATON_LOG_LEVEL"] ?? "info"
        guard let logLevel = Logger.Level(rawValue: levelText.lowercased()) else {
            let setting = options.logLevel != nil ? "--log-level" : "BATON_LOG_LEVEL"
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError("\(setting) '\(levelText)' is not a log level; expected one of \(levels)")
        }
        var socketGroup: SocketGroup?
        if let name = environment["BATON_SOCKET_GROUP"], !name.isEmpty {
            guard let entry = getgrnam(name) else {
                throw ConfigurationError("BATON_SOCKET_GROUP '\(name)' names no group on this system")
            }
            socketGroup = SocketGroup(name: name, id: entry.pointee.gr_gid)
        }
        var configuration = Self(
            processName: processName,
            runDirectory: runDirectory,
            dataDirectory: dataDirectory,
            configDirectory: configDirectory,
            logLevel: logLevel,
            socketGroup: socketGroup
        )
        if let text = environment["BATON_STALLED_FRAME_TIMEOUT"] {
            guard let seconds = Double(text), seconds > 0, seconds <= 3600 else {
                throw ConfigurationError(
                    "BATON_STALLED_FRAME_TIMEOUT '\(text)' is not a timeout; expected seconds above 0, at most 3600"
                )
            }
            configuration.stalledFrameTimeout = .milliseconds(Int64(seconds * 1000))
        }
        let socket = configuration.socketPath
        guard socket.utf8.count <= 107 else {
            throw ConfigurationError(
                "the socket path '\(socket)' is \(socket.utf8.count) bytes, over the 107 a Unix socket allows; "
                    + "choose a shorter --run-dir"
            )
        }
        return configuration
    }

    private static func directory(
        _ flag: String?,
        flag flagName: String,
        variable: String,
        environment: [String: String],
        default defaultValue: String
    ) throws(ConfigurationError) -> String {
        let (value, setting) =
            if let flag {
                (flag, flagName)
            } else if let value = environment[variable] {
                (value, variable)
            } else {
                (defaultValue, "default")
            }
        guard !value.isEmpty else {
            throw ConfigurationError("\(setting) is empty; expected a directory path")
        }
        guard !value.utf8.contains(0) else {
            throw ConfigurationError("\(setting) '\(value)' contains a NUL byte; expected a directory path")
        }
        return value
    }
}

/// A setting's value is not acceptable; the message names the setting, the value and what was expected. A call
/// that meets one (a Reload whose directory has gone) ends `FAILED_PRECONDITION`: the operator must fix it.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible, RPCErrorConvertible {
    /// What is wrong, naming the setting.
    public let description: String

    /// An error described in one sentence.
    public init(_ description: String) {
        self.description = description
    }

    public var rpcError: RPCError {
        RPCError(code: .failedPrecondition, message: self.description)
    }
}
