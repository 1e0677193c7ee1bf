import ArgumentParser
import BatonRuntime
import DeskKit
import Foundation
import GateEvaluatorKit
import RouterKit

/// `batonctl validate`: the configuration files checked as the gate-evaluator and the router read them, without
/// either running.
struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the workflows and destinations.yaml as the processes read them; no process needs to run.",
        discussion: """
            With no FILE, every workflow in CONFIG_DIR/workflows/ and CONFIG_DIR/destinations.yaml. A file named \\
            destinations.yaml (or .yml) is read as destinations, any other as a workflow. Each problem is printed \\
            as FILE:LINE:COLUMN: what is wrong. Exit 0 when everything validates, 1 when something does not.
            """
    )

    @Option(help: "Directory of the configuration (default: $BATON_CONFIG_DIR, else config).")
    var configDir: String?

    @Argument(help: "Files to check (default: the whole configuration).") var files: [String] = []

    func run() async throws {
        let files = try self.files.isEmpty ? self.configurationFiles() : self.files
        var problems: [ConfigProblem] = []
        var workflowFiles: [String: String] = [:]  // workflow id -> the file that defines it
        for file in files {
            do {
                let text = try TextFile.read(file)
                if Self.isDestinations(file) {
                    let configuration = try DestinationsFile.parse(text, file: file)
                    Output.line("\(file): ok, \(configuration.destinations.count) destinations")
                } else if Self.name(of: file) == AgentsFile.name {
                    let agents = try AgentsFile.parse(text, file: file)
                    Output.line("\(file): ok, \(agents.count) agents")
                } else {
                    let workflow = try WorkflowFile.parse(text, file: file)
                    if let other = workflowFiles[workflow.id] {
                        problems.append(
                            ConfigProblem(
                                file: file,
                                line: 1,
                                column: 1,
                                message: "workflow id '\(workflow.id)' is already defined in \(other)"
                            )
                        )
                        continue
                    }
                    workflowFiles[workflow.id] = file
                    Output.line("\(file): ok, workflow \(workflow.id) with \(workflow.gates.count) gates")
                }
            } catch let error as InvalidConfigFile {
                problems += error.problems
            } catch {
                problems.append(ConfigProblem(file: file, line: 1, column: 1, message: "\(error)"))
            }
        }
        for problem in problems {
            Output.line(problem.description)
        }
        if !problems.isEmpty {
            throw ExitCode(1)
        }
    }

    static func name(of file: String) -> String {
        file.split(separator: "/").last.map(String.init) ?? file
    }

    static func isDestinations(_ file: String) -> Bool {
        let name = Self.name(of: file)
        return name == "destinations.yaml" || name == "destinations.yml"
    }

    /// The workflows and destinations.yaml of the configuration directory, as the processes find them.
    func configurationFiles() throws -> [String] {
        let directory =
            self.configDir
            ?? ProcessEnvironment.current["BATON_CONFIG_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? BatonConfiguration.defaultConfigDirectory
        let workflows: [String]
        do {
            workflows = try Directory.entries(directory + "/workflows", what: "the workflows directory")
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                .map { directory + "/workflows/" + $0 }
        } catch {
            Output.error(error.description)
            throw ExitCode(2)
        }
        let agents = directory + "/" + AgentsFile.name
        return workflows + [directory + "/destinations.yaml"]
            + (FileManager.default.fileExists(atPath: agents) ? [agents] : [])
    }
}
