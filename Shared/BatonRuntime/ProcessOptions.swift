public import ArgumentParser

/// The command-line options every Baton executable takes.
public struct ProcessOptions: ParsableArguments, Sendable {
    @Option(help: "Directory for sockets (default: $BATON_RUN_DIR, else var/run).")
    public var runDir: String?

    @Option(help: "Directory for databases (default: $BATON_DATA_DIR, else var/data).")
    public var dataDir: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (default: $BATON_LOG_LEVEL, else info).")
    public var logLevel: String?

    @Option(
        help: "Directory of the configuration: workflows/, destinations.yaml (default: $BATON_CONFIG_DIR, else config)."
    )
    public var configDir: String?

    public init() {}
}
