import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Foundation
import SwiftProtobuf
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The gate-evaluator process over its socket: Evaluate, the workflow calls, and reloads that keep the previous
/// valid version of a workflow whose file has become invalid.
@Suite("Gate evaluator process")
struct GateEvaluatorProcessTests {
    /// Runs `body` with a gate-evaluator started with `arguments` on its own copy of the example workflows,
    /// stopped and removed however `body` ends.
    static func with(_ arguments: [String] = [], _ body: (inout RunningService) async throws -> Void) async throws {
        try await RunningService.with(
            "gate-evaluator",
            arguments: arguments,
            prepare: { directory in
                mkdir(directory.appending("config"), 0o755)
                mkdir(directory.appending("config/workflows"), 0o755)
                for name in ["billing-support", "bereavement", "general"] {
                    let text = try TextFile.read(ServiceProcess.repositoryDirectory + "/config/workflows/\(name).yaml")
                    try SupervisorTests.write(text, to: directory.appending("config/workflows/\(name).yaml"))
                }
            },
            body
        )
    }

    func evaluate(
        _ workflow: String,
        _ build: (inout Baton_Gates_V1_CallContext) -> Void
    ) -> Baton_Gates_V1_EvaluateRequest {
        var request = Baton_Gates_V1_EvaluateRequest()
        request.workflowID = workflow
        build(&request.context)
        return request
    }

    @Test("Evaluate hands off at a designed gate, explains why, and reports undesigned escalations")
    func evaluate() async throws {
        try await Self.with { running in
            let payment = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                self.evaluate("billing-support") { $0.intents = ["make_payment"] }
            )
            #expect(payment.outcome == .handoff)
            #expect(payment.gateID == "take-payment")
            #expect(payment.category == "payment")
            #expect(payment.skills == ["payments", "pci"])
            #expect(payment.priority == .high)
            #expect(payment.briefLead == ["identity.name", "account.id", "card.last4"])
            #expect(payment.matched == "intent make_payment is in [make_payment, update_card]")
            #expect(!payment.undesigned)

            let grief = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                self.evaluate("bereavement") { $0.callerTurns = ["My mother passed away last week"] }
            )
            #expect(grief.gateID == "loss-reported")
            #expect(grief.priority == .urgent)

            let escalation = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                self.evaluate("billing-support") {
                    $0.trigger.kind = .aiEscalation
                    $0.currentStep = "review_bill"
                }
            )
            #expect(escalation.outcome == .handoff)
            #expect(escalation.undesigned)
            #expect(escalation.category == "ai_escalation")
            #expect(escalation.skills == ["billing"])
            #expect(escalation.step == "review_bill")

            let nothing = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                self.evaluate("general") { $0.callerTurns = ["what are your opening hours?"] }
            )
            #expect(nothing.outcome == .continue)

            let unknown = await #expect(throws: RPCError.self) {
                try await running.call(
                    Baton_Gates_V1_GateEvaluator.Method.evaluate,
                    self.evaluate("nope") { _ in }
                )
            }
            #expect(unknown?.code == .notFound)
            #expect(
                unknown?.message.contains("no workflow 'nope' is loaded; loaded: bereavement, billing-support, general")
                    == true
            )
            let empty = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Gates_V1_GateEvaluator.Method.evaluate, self.evaluate("") { _ in })
            }
            #expect(empty?.code == .invalidArgument)
        }
    }

    @Test("ValidateWorkflow lists problems and loads nothing; Reload keeps the old version of an invalid file")
    func validateAndReload() async throws {
        try await Self.with { running in
            var validate = Baton_Gates_V1_ValidateWorkflowRequest()
            validate.yaml =
                "id: x\nversion: 1\npersona: p\nsteps: [a]\ngates:\n  - id: g\n    category: legal\n    when:\n      step: b\n"
            validate.fileName = "x.yaml"
            let verdict = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.validateWorkflow,
                validate
            )
            #expect(!verdict.valid)
            #expect(verdict.problems.first.map { "\($0.file):\($0.line):\($0.column)" } == "x.yaml:9:13")
            #expect(verdict.problems.first?.message == "step 'b' is not one of the workflow's steps [a]")
            let listed = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.listWorkflows,
                Baton_Gates_V1_ListWorkflowsRequest()
            )
            #expect(listed.workflows.map(\.id) == ["bereavement", "billing-support", "general"])

            // An invalid new version is refused; the old one keeps serving.
            let general = running.directory.appending("config/workflows") + "/general.yaml"
            let original = try TextFile.read(general)
            try SupervisorTests.write(
                original.replacingFirst("version: 1", with: "version: 2\ncolour: blue"),
                to: general
            )
            let refused = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.reload,
                Baton_Gates_V1_ReloadRequest()
            )
            #expect(refused.problems.map(\.message).contains { $0.hasPrefix("unknown key 'colour'") })
            #expect(refused.workflows.map(\.id).contains("general"))
            #expect(try await running.version(of: "general") == "1")
            let reload = try await running.batonctl(["reload", "gate-evaluator"])
            #expect(reload.status == 1, "\(reload.output)")
            #expect(reload.output.contains("general (last valid version)"), "\(reload.output)")
            #expect(reload.output.contains("general.yaml:") && reload.output.contains("unknown key 'colour'"))

            // A valid new version is picked up when the file changes, without asking.
            try SupervisorTests.write(original.replacingFirst("version: 1", with: "version: 3"), to: general)
            #expect(await eventually { (try? await running.version(of: "general")) == "3" })
        }
    }

    @Test(
        "restarted with a workflow file that no longer validates, it serves the file's last valid version and says so; with no valid version at all it refuses to start"
    )
    func lastValidVersionAfterRestart() async throws {
        try await Self.with { running in
            let billing = running.directory.appending("config/workflows") + "/billing-support.yaml"
            let original = try TextFile.read(billing)
            let broken = original.replacingFirst("version: 1", with: "version: 2\ncolour: blue")
            try SupervisorTests.write(broken, to: billing)
            try await running.killAndRestart()
            let listed = try await running.call(
                Baton_Gates_V1_GateEvaluator.Method.listWorkflows,
                Baton_Gates_V1_ListWorkflowsRequest()
            )
            let served = listed.workflows.first { $0.id == "billing-support" }
            #expect(served?.version == "1", "the workflow must not go missing: \(listed)")
            #expect(served?.lastValidCopy.hasSuffix("gate-evaluator.last-valid/billing-support.yaml") == true)
            #expect(listed.problems.map { "\($0.file):\($0.line)" } == ["config/workflows/billing-support.yaml:5"])
            #expect(running.process.output.contains("workflow refused; its last valid version keeps serving"))
            #expect(listed.workflows.first { $0.id == "general" }?.lastValidCopy == "")

            // Another data directory has no copy: every workflow broken and nothing to fall back on.
            for name in ["bereavement", "general"] {
                try SupervisorTests.write("id: [", to: running.directory.appending("config/workflows/\(name).yaml"))
            }
            let result = try await ServiceProcess.run(
                path: ServiceProcess.productsDirectory + "/gate-evaluator",
                arguments: ["--data-dir", "other-data", "--run-dir", "other-run"],
                in: running.directory
            )
            #expect(result.status == 1)
            #expect(result.output.contains("no workflow validates and none has a last valid version to serve"))
        }
    }

    @Test("SIGHUP reloads the workflows, with the checks of the files turned off")
    func sighupReloads() async throws {
        try await Self.with(["--watch-interval", "0"]) { running in
            let general = running.directory.appending("config/workflows") + "/general.yaml"
            let original = try TextFile.read(general)
            try SupervisorTests.write(original.replacingFirst("version: 1", with: "version: 5"), to: general)
            // Nothing watches the file, so only the signal can bring version 5 in.
            #expect(try await running.version(of: "general") == "1")
            running.process.signal(SIGHUP)
            #expect(await eventually { (try? await running.version(of: "general")) == "5" })
        }
    }

    @Test("batonctl call gate-evaluator Evaluate takes and prints JSON")
    func batonctlCall() async throws {
        try await Self.with { running in
            let result = try await running.batonctl(
                [
                    "call", "gate-evaluator", "Evaluate",
                    #"{"workflowId": "general", "context": {"callerTurns": ["can I talk to someone?"]}}"#,
                ]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(#""gateId":"asked-for-a-person""#))
            #expect(result.output.contains(#""category":"caller_request""#))
            // A reply that lists problems is not a success.
            let invalid = try await running.batonctl(
                ["call", "gate-evaluator", "ValidateWorkflow", #"{"yaml": "id: x\ncolour: blue\n"}"#]
            )
            #expect(invalid.status == 1, "\(invalid.output)")
            #expect(invalid.output.contains("batonctl: the reply lists problems"))
            let reload = try await running.batonctl(["call", "gate-evaluator", "Reload"])
            #expect(reload.status == 0, "\(reload.output)")
        }
    }

    @Test("without a workflows directory the gate-evaluator refuses to start, naming it")
    func noWorkflows() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try await ServiceProcess.run(
            path: ServiceProcess.productsDirectory + "/gate-evaluator",
            in: directory
        )
        #expect(result.status == 1)
        #expect(
            result.output.contains("cannot read the workflows directory 'config/workflows': No such file or directory")
        )
    }
}

extension RunningService {
    fileprivate func version(of id: String) async throws -> String {
        var request = Baton_Gates_V1_GetWorkflowRequest()
        request.id = id
        return try await self.call(Baton_Gates_V1_GateEvaluator.Method.getWorkflow, request).workflow.version
    }
}
