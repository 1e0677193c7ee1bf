import ArgumentParser
import BatonRuntime
import Logging
import Testing

/// Configuration: a flag wins over its `BATON_*` variable, which wins over the default; bad values name the setting.
@Suite("Configuration")
struct BatonConfigurationTests {
    func options(_ arguments: [String]) throws -> ProcessOptions {
        try ProcessOptions.parse(arguments)
    }

    @Test("defaults are var/run, var/data and info")
    func defaults() throws {
        let configuration = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: [:]
        )
        #expect(configuration.runDirectory == "var/run")
        #expect(configuration.dataDirectory == "var/data")
        #expect(configuration.logLevel == .info)
        #expect(configuration.socketPath == "var/run/router.sock")
        #expect(configuration.configDirectory == "config")
        #expect(configuration.socketGroup == nil)
    }

    @Test("BATON_STALLED_FRAME_TIMEOUT sets the stalled-frame timeout in seconds; a bad one is refused, naming it")
    func stalledFrameTimeout() throws {
        let configured = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: ["BATON_STALLED_FRAME_TIMEOUT": "2.5"]
        )
        #expect(configured.stalledFrameTimeout == .milliseconds(2_500))
        let standard = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: [:]
        )
        #expect(standard.stalledFrameTimeout == .seconds(10))
        for bad in ["0", "soon", "-1", "7200"] {
            #expect(throws: ConfigurationError.self) {
                try BatonConfiguration.resolve(
                    processName: "router",
                    options: self.options([]),
                    environment: ["BATON_STALLED_FRAME_TIMEOUT": bad]
                )
            }
        }
    }

    @Test("the configuration directory comes from --config-dir, else BATON_CONFIG_DIR; an empty one is refused")
    func configDirectory() throws {
        let fromEnvironment = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: ["BATON_CONFIG_DIR": "/etc/baton"]
        )
        #expect(fromEnvironment.configDirectory == "/etc/baton")
        let fromFlag = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options(["--config-dir", "scratch"]),
            environment: ["BATON_CONFIG_DIR": "/etc/baton"]
        )
        #expect(fromFlag.configDirectory == "scratch")
        #expect(throws: ConfigurationError("BATON_CONFIG_DIR is empty; expected a directory path")) {
            try BatonConfiguration.resolve(
                processName: "router",
                options: self.options([]),
                environment: ["BATON_CONFIG_DIR": ""]
            )
        }
    }

    @Test("the environment overrides the defaults, and flags override the environment")
    func precedence() throws {
        let environment = [
            "BATON_RUN_DIR": "/srv/baton/run", "BATON_DATA_DIR": "/srv/baton/data", "BATON_LOG_LEVEL": "debug",
        ]
        let fromEnvironment = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: environment
        )
        #expect(fromEnvironment.runDirectory == "/srv/baton/run")
        #expect(fromEnvironment.dataDirectory == "/srv/baton/data")
        #expect(fromEnvironment.logLevel == .debug)
        #expect(fromEnvironment.socketPath == "/srv/baton/run/router.sock")

        let fromFlags = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options(["--run-dir", "run/", "--data-dir", "data", "--log-level", "WARNING"]),
            environment: environment
        )
        #expect(fromFlags.runDirectory == "run/")
        #expect(fromFlags.socketPath == "run/router.sock")
        #expect(fromFlags.dataDirectory == "data")
        #expect(fromFlags.logLevel == .warning)
    }

    @Test("BATON_SOCKET_GROUP resolves to the group's id")
    func socketGroup() throws {
        let configuration = try BatonConfiguration.resolve(
            processName: "router",
            options: self.options([]),
            environment: ["BATON_SOCKET_GROUP": "root"]
        )
        #expect(configuration.socketGroup?.id == 0)
    }

    @Test(
        "a bad value is refused with a message naming the setting",
        arguments: [
            (
                [], ["BATON_LOG_LEVEL": "chatty"],
                "BATON_LOG_LEVEL 'chatty' is not a log level; expected one of trace, debug, info, notice, warning, error, critical"
            ),
            (
                ["--log-level", "chatty"], [:],
                "--log-level 'chatty' is not a log level; expected one of trace, debug, info, notice, warning, error, critical"
            ),
            ([], ["BATON_DATA_DIR": ""], "BATON_DATA_DIR is empty; expected a directory path"),
            (["--run-dir", ""], ["BATON_RUN_DIR": "ok"], "--run-dir is empty; expected a directory path"),
            (
                [], ["BATON_SOCKET_GROUP": "no-such-group-here"],
                "BATON_SOCKET_GROUP 'no-such-group-here' names no group on this system"
            ),
        ] as [([String], [String: String], String)]
    )
    func refused(arguments: [String], environment: [String: String], message: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            try BatonConfiguration.resolve(
                processName: "router",
                options: self.options(arguments),
                environment: environment
            )
        }
        #expect(error?.description == message)
    }

    @Test("a run directory that makes the socket path too long for a Unix socket is refused")
    func socketPathTooLong() throws {
        let long = "/tmp/" + String(repeating: "d", count: 100)
        let error = #expect(throws: ConfigurationError.self) {
            try BatonConfiguration.resolve(
                processName: "metrics-collector",
                options: self.options(["--run-dir", long]),
                environment: [:]
            )
        }
        #expect(error?.description.contains("over the 107 a Unix socket allows") == true)
    }
}
