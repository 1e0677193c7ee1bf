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
/// Each valid version is also copied to ``copies``, so that after a restart a file that no longer validates
/// serves its last valid version too, instead of its workflow silently going missing.
final class WorkflowLibrary: Sendable {
    struct Loaded: Sendable {
        var workflow: Workflow
        var source: String
        /// Set when `source` no longer validates: the last valid version that serves instead, and where it is kept.
        var lastValidCopy: String?
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
    let copies: LastValidCopies?
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(directory: String, copies: LastValidCopies? = nil, logger: Logger) {
        self.directory = directory
        self.copies = copies
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
        var valid: [(file: String, text: String)] = []
        for file in files {
            fingerprints[file] = FileFingerprint(of: file)
            do {
                let text = try TextFile.read(file)
                parsed.append((file, try WorkflowFile.parse(text, file: file)))
                valid.append((file, text))
            } catch let error as InvalidConfigFile {
                problems += error.problems
            } catch {
                problems.append(ConfigProblem(file: file, line: 1, column: 1, message: "\(error)"))
            }
        }
        let failed = Set(problems.map(\.file))
        let kept = self.keptCopies(of: failed)
        self.state.withLockedValue { state in
            var byID: [String: Loaded] = [:]
            var idOfFile: [String: String] = [:]
            // Files that failed keep their previous valid workflow: the one serving, else the kept copy.
            for file in failed {
                if let id = state.idOfFile[file], var previous = state.byID[id], files.contains(file) {
                    previous.lastValidCopy = previous.lastValidCopy ?? self.copies?.path(of: file) ?? "memory"
                    byID[id] = previous
                    idOfFile[file] = id
                } else if let copy = kept[file] {
                    byID[copy.workflow.id] = copy
                    idOfFile[file] = copy.workflow.id
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
        self.keep(valid, of: files)
        for problem in problems {
            let serving = self.all.first { $0.source == problem.file }?.lastValidCopy
            self.logger.warning(
                serving == nil
                    ? "workflow refused; its file has no valid version to serve"
                    : "workflow refused; its last valid version keeps serving",
                metadata: ["baton.problem": "\(problem)", "baton.last_valid_copy": "\(serving ?? "none")"]
            )
        }
        self.logger.info(
            "workflows loaded",
            metadata: ["baton.workflows": "\(self.all.map(\.workflow.id).joined(separator: ","))"]
        )
        return problems
    }

    /// The kept last valid versions of the files that failed, parsed (a copy that does not parse is skipped).
    private func keptCopies(of failed: Set<String>) -> [String: Loaded] {
        guard let copies = self.copies else {
            return [:]
        }
        var kept: [String: Loaded] = [:]
        for file in failed {
            guard let text = copies.text(of: file), let workflow = try? WorkflowFile.parse(text, file: file) else {
                continue
            }
            kept[file] = Loaded(workflow: workflow, source: file, lastValidCopy: copies.path(of: file))
        }
        return kept
    }

    /// Copies each valid file, and forgets the copies of files that were removed.
    private func keep(_ valid: [(file: String, text: String)], of files: [String]) {
        guard let copies = self.copies else {
            return
        }
        for (file, text) in valid {
            do {
                try copies.save(text, of: file)
            } catch {
                self.logger.error(
                    "cannot keep the last valid version of a workflow",
                    metadata: ["baton.file": "\(file)", "baton.error": "\(error)"]
                )
            }
        }
        let present = Set(files.map { copies.path(of: $0) })
        for name in copies.names() where !present.contains(copies.directory + "/" + name) {
            copies.remove(of: name)
        }
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
