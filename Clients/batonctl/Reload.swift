import ArgumentParser
import BatonProto

/// `batonctl reload`: the gate-evaluator's workflows and the router's destinations read again now, as SIGHUP or a
/// changed file would, with what was refused.
struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the configuration again now: the gate-evaluator's workflows, the router's destinations.",
        discussion: """
            A file that does not validate is refused with FILE:LINE:COLUMN, and its last valid version keeps \\
            serving. Exit 0 when everything loaded, 1 when something was refused.
            """
    )

    @OptionGroup var connection: Connection
    @Argument(help: "gate-evaluator, router, or all (the default).") var name = "all"

    func validate() throws {
        guard ["all", "gate-evaluator", "router"].contains(self.name) else {
            throw ValidationError(
                "'\(self.name)' has no configuration to reload; expected gate-evaluator, router or all"
            )
        }
    }

    func run() async throws {
        var refused = false
        if self.name != "router" {
            let reply = try await self.connection.call(
                "gate-evaluator",
                Baton_Gates_V1_GateEvaluator.Method.reload,
                Baton_Gates_V1_ReloadRequest()
            )
            let serving = reply.workflows.map { $0.id + ($0.lastValidCopy.isEmpty ? "" : " (last valid version)") }
            Output.line("gate-evaluator: \(reply.workflows.count) workflows: \(serving.joined(separator: ", "))")
            for problem in reply.problems {
                Output.line("  \(problem.file):\(problem.line):\(problem.column): \(problem.message)")
            }
            refused = refused || !reply.problems.isEmpty
        }
        if self.name != "gate-evaluator" {
            let reply = try await self.connection.call(
                "router",
                Baton_Routing_V1_Router.Method.reload,
                Baton_Routing_V1_ReloadRequest()
            )
            Output.line(
                reply.problems.isEmpty
                    ? "router: \(reply.destinations) destinations"
                    : "router: destinations.yaml refused; the previous destinations keep serving"
            )
            for problem in reply.problems {
                Output.line("  \(problem.file):\(problem.line):\(problem.column): \(problem.message)")
            }
            refused = refused || !reply.problems.isEmpty
        }
        if refused {
            throw ExitCode(1)
        }
    }
}
