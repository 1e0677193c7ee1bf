public import ArgumentParser
import BatonRPC
import BatonRuntime
import Logging
import ServiceLifecycle

/// The `router` process: destinations, their availability and reservations. It answers `baton.routing.v1.Router`
/// on `$BATON_RUN_DIR/router.sock`, keeps decisions and reservations in `$BATON_DATA_DIR/router.sqlite`, and
/// reloads `destinations.yaml` on `Reload`, on SIGHUP, and when the file changes.
public struct RouterCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Baton's router: chooses the destination that gets a caller to a prepared human fastest."
    )

    @OptionGroup var options: ProcessOptions

    @OptionGroup var watching: WatchOptions

    /// The command as the executable's main parses it.
    public init() {}

    public func run() async throws {
        let process = try BatonProcess(name: "router", options: self.options)
        // Opened once the socket is ours: a second instance is refused before it touches the database.
        let prepared = Prepared<RouterCore>("the router's database")
        try await process.run(
            methods: RouterAPI(prepared: prepared).methods,
            services: [
                ConfigurationWatcher(
                    "destinations",
                    interval: self.watching.interval,
                    logger: process.logger,
                    changedOnDisk: { (try? prepared.get())?.changedOnDisk() ?? false },
                    reload: { _ = try? prepared.get().reload() }
                ),
                ReservationExpiry(prepared: prepared, logger: process.logger),
            ]
        ) { _ in
            prepared.set(
                try RouterCore(
                    file: process.configuration.configDirectory + "/destinations.yaml",
                    database: process.configuration.dataDirectory + "/router.sqlite",
                    copies: LastValidCopies(directory: process.configuration.dataDirectory + "/router.last-valid"),
                    logger: process.logger
                )
            )
        }
    }
}

/// Expires held reservations that were neither accepted nor released in time, checking every 250 ms.
struct ReservationExpiry: Service {
    let prepared: Prepared<RouterCore>
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            guard let core = self.prepared.ready else {
                continue  // still opening the store
            }
            do {
                try await core.expire()
            } catch {
                self.logger.error(
                    "router: expiring reservations failed, will retry",
                    metadata: ["baton.error": "\(error)"]
                )
            }
        }
    }
}
