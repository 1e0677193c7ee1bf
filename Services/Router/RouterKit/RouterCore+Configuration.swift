import BatonRuntime
import Foundation
import Logging
import Synchronization

/// Loading `destinations.yaml`, and reloading it when asked or when it changes.
extension RouterCore {
    struct Loaded {
        var configuration: RoutingConfiguration
        var fingerprint: FileFingerprint?
        var text: String
    }

    static func load(_ file: String) throws(InvalidConfigFile) -> Loaded {
        let text: String
        do {
            text = try TextFile.read(file)
        } catch {
            throw InvalidConfigFile(problems: [ConfigProblem(file: file, line: 1, column: 1, message: "\(error)")])
        }
        let fingerprint = FileFingerprint(of: file)
        return Loaded(configuration: try DestinationsFile.parse(text, file: file), fingerprint: fingerprint, text: text)
    }

    /// The configuration to start with: the file, or, when it does not validate, the copy of its last valid
    /// version (with the file's problems, to report). With neither, the router cannot start.
    static func initial(
        _ file: String,
        copies: LastValidCopies?,
        logger: Logger
    ) throws -> (loaded: Loaded, problems: [ConfigProblem], copy: String?) {
        do {
            let loaded = try Self.load(file)
            Self.keep(loaded, of: file, in: copies, logger: logger)
            return (loaded, [], nil)
        } catch {
            guard let copies, let text = copies.text(of: file),
                let configuration = try? DestinationsFile.parse(text, file: file)
            else {
                throw error
            }
            logger.error(
                "router: destinations refused; their last valid version serves",
                metadata: [
                    "baton.file": "\(file)", "baton.last_valid_copy": "\(copies.path(of: file))",
                    "baton.problems": "\(error.problems.map(\.description))",
                ]
            )
            let loaded = Loaded(configuration: configuration, fingerprint: FileFingerprint(of: file), text: text)
            return (loaded, error.problems, copies.path(of: file))
        }
    }

    static func keep(_ loaded: Loaded, of file: String, in copies: LastValidCopies?, logger: Logger) {
        do {
            try copies?.save(loaded.text, of: file)
        } catch {
            logger.error(
                "router: cannot keep the last valid version of the destinations",
                metadata: ["baton.file": "\(file)", "baton.error": "\(error)"]
            )
        }
    }

    /// Reads the file again; an invalid one is refused (its problems returned and kept for ListDestinations) and
    /// the previous configuration keeps serving. Live state and reservations carry over by destination id.
    @discardableResult
    func reload() -> [ConfigProblem] {
        do {
            let loaded = try Self.load(self.file)
            Self.keep(loaded, of: self.file, in: self.copies, logger: self.logger)
            self.state.withLock { state in
                state.configuration = loaded.configuration
                state.fingerprint = loaded.fingerprint
                state.problems = []
                state.lastValidCopy = nil
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
            let problems = error.problems
            self.state.withLock { state in
                state.problems = problems
                state.fingerprint = FileFingerprint(of: self.file)
                state.lastValidCopy = state.lastValidCopy ?? self.copies?.path(of: self.file) ?? "memory"
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
