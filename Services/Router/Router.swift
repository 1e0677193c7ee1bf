import ArgumentParser
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import ServiceLifecycle

/// The `router` process: destinations, their availability and reservations. It answers `baton.routing.v1.Router`
/// on `$BATON_RUN_DIR/router.sock`, keeps decisions and reservations in `$BATON_DATA_DIR/router.sqlite`, and
/// reloads `destinations.yaml` on `Reload`, on SIGHUP, and when the file changes.
@main
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Baton's router: chooses the destination that gets a caller to a prepared human fastest.",
        subcommands: [RouterBenchmark.self]
    )

    @OptionGroup var options: ProcessOptions

    @Option(help: "Directory of the configuration (default: $BATON_CONFIG_DIR, else config); reads destinations.yaml.")
    var configDir: String?

    func run() async throws {
        let process = try BatonProcess(name: "router", options: self.options)
        let configDirectory = self.configDir ?? ProcessEnvironment.current["BATON_CONFIG_DIR"] ?? "config"
        let dataDirectory = process.configuration.dataDirectory
        do {
            try FileManager.default.createDirectory(
                atPath: dataDirectory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw ConfigurationError("cannot create the data directory \(dataDirectory): \(error)")
        }
        let core = try RouterCore(
            file: configDirectory + "/destinations.yaml",
            database: dataDirectory + "/router.sqlite",
            logger: process.logger
        )
        try await process.run(
            methods: RouterAPI(core: core).methods,
            services: [
                ConfigurationWatcher(
                    "destinations",
                    logger: process.logger,
                    changedOnDisk: { core.changedOnDisk() },
                    reload: { core.reload() }
                ),
                ReservationExpiry(core: core, logger: process.logger),
            ]
        )
    }
}

/// Expires held reservations that were neither accepted nor released in time, checking every 250 ms.
struct ReservationExpiry: Service {
    let core: RouterCore
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            do {
                try await self.core.expire()
            } catch {
                self.logger.error("router: expiring reservations failed, will retry: \(error)")
            }
        }
    }
}
