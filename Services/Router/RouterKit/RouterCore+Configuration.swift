import BatonRuntime
import Foundation
import Logging
import Synchronization

/// Loading `destinations.yaml`, and reloading it when asked or when it changes.
extension RouterCore {
    static func load(
        _ file: String
    ) throws -> (configuration: RoutingConfiguration, fingerprint: FileFingerprint?) {
        let text: String
        do {
            text = try TextFile.read(file)
        } catch {
            throw InvalidConfigFile(problems: [ConfigProblem(file: file, line: 1, column: 1, message: "\(error)")])
        }
        return (try DestinationsFile.parse(text, file: file), FileFingerprint(of: file))
    }

    /// Reads the file again; an invalid one is refused (its problems returned and kept for ListDestinations) and
    /// the previous configuration keeps serving. Live state and reservations carry over by destination id.
    @discardableResult
    func reload() -> [ConfigProblem] {
        do {
            let loaded = try Self.load(self.file)
            self.state.withLock { state in
                state.configuration = loaded.configuration
                state.fingerprint = loaded.fingerprint
                state.problems = []
                state.shapes = [:]  // kept decisions index the old configuration's destinations
            }
            self.logger.info(
                "router: destinations reloaded",
                metadata: [
                    "baton.destinations": "\(loaded.configuration.destinations.count)", "baton.file": "\(self.file)",
                ]
            )
            return []
        } catch {
            let problems =
                (error as? InvalidConfigFile)?.problems
                ?? [ConfigProblem(file: self.file, line: 1, column: 1, message: "\(error)")]
            self.state.withLock { state in
                state.problems = problems
                state.fingerprint = FileFingerprint(of: self.file)
            }
            self.logger.error(
                "router: destinations refused; the previous configuration keeps serving",
                metadata: ["baton.file": "\(self.file)", "baton.problems": "\(problems.map(\.description))"]
            )
            return problems
        }
    }

    /// Whether the file changed since it was last read: its size, inode or modification time differ.
    func changedOnDisk() -> Bool {
        let now = FileFingerprint(of: self.file)
        return self.state.withLock { $0.fingerprint != now }
    }

    var configuration: RoutingConfiguration {
        self.state.withLock { $0.configuration }
    }
}
