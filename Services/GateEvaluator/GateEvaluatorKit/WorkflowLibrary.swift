import BatonRuntime
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The workflows that serve, loaded from a directory of `*.yaml` files.
///
/// A reload reads every file again. A file that no longer validates is refused, with its problems, and the
/// previous valid version of its workflow keeps serving; a file that was removed takes its workflow with it.
final class WorkflowLibrary: Sendable {
    struct Loaded: Sendable {
        var workflow: Workflow
        var source: String
    }

    private struct State {
        var byID: [String: Loaded] = [:]
        /// The workflow id each file last loaded validly.
        var idOfFile: [String: String] = [:]
        var problems: [ConfigProblem] = []
        /// Each file's fingerprint at the last load, to notice changes.
        var fingerprints: [String: FileFingerprint?] = [:]
    }

    let directory: String
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    func workflow(_ id: String) -> Loaded? {
        self.state.withLockedValue { $0.byID[id] }
    }

    var all: [Loaded] {
        self.state.withLockedValue { $0.byID.values.sorted { $0.workflow.id < $1.workflow.id } }
    }

    var problems: [ConfigProblem] {
        self.state.withLockedValue { $0.problems }
    }

    /// Reads every `*.yaml` in the directory. Throws when the directory cannot be read at all.
    @discardableResult
    func reload() throws(ConfigurationError) -> [ConfigProblem] {
        let files = try self.yamlFiles()
        var parsed: [(file: String, workflow: Workflow)] = []
        var problems: [ConfigProblem] = []
        var fingerprints: [String: FileFingerprint?] = [:]
        for file in files {
            fingerprints[file] = FileFingerprint(of: file)
            do {
                parsed.append((file, try WorkflowFile.parse(try TextFile.read(file), file: file)))
            } catch let error as InvalidConfigFile {
                problems += error.problems
            } catch {
                problems.append(ConfigProblem(file: file, line: 1, column: 1, message: "\(error)"))
            }
        }
        self.state.withLockedValue { state in
            var byID: [String: Loaded] = [:]
            var idOfFile: [String: String] = [:]
            // Files that failed keep their previous valid workflow.
            let failed = Set(problems.map(\.file))
            for file in failed {
                if let id = state.idOfFile[file], let previous = state.byID[id], files.contains(file) {
                    byID[id] = previous
                    idOfFile[file] = id
                }
            }
            for (file, workflow) in parsed {
                if let other = byID[workflow.id], other.source != file {
                    problems.append(
                        ConfigProblem(
                            file: file,
                            line: 1,
                            column: 1,
                            message: "workflow id '\(workflow.id)' is already defined in \(other.source)"
                        )
                    )
                    continue
                }
                byID[workflow.id] = Loaded(workflow: workflow, source: file)
                idOfFile[file] = workflow.id
            }
            state.byID = byID
            state.idOfFile = idOfFile
            state.problems = problems
            state.fingerprints = fingerprints
        }
        for problem in problems {
            self.logger.warning("workflow refused", metadata: ["baton.problem": "\(problem)"])
        }
        self.logger.info(
            "workflows loaded",
            metadata: ["baton.workflows": "\(self.all.map(\.workflow.id).joined(separator: ","))"]
        )
        return problems
    }

    /// Whether a file was added, removed or changed since the last load.
    func changedOnDisk() -> Bool {
        guard let files = try? self.yamlFiles() else {
            return false
        }
        let now = Dictionary(uniqueKeysWithValues: files.map { ($0, FileFingerprint(of: $0)) })
        return self.state.withLockedValue { $0.fingerprints != now }
    }

    private func yamlFiles() throws(ConfigurationError) -> [String] {
        try Directory.entries(self.directory, what: "the workflows directory").filter {
            $0.hasSuffix(".yaml") || $0.hasSuffix(".yml")
        }.map { self.directory + "/" + $0 }
    }
}
