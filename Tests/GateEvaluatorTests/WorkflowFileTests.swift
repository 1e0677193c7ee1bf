import BatonRuntime
import BatonTestKit
import Testing

@testable import GateEvaluatorKit

/// Workflow YAML: the examples load, and every validation error names its line and column and what was expected.
@Suite("Workflow files")
struct WorkflowFileTests {
    static let examples = ["billing-support", "bereavement", "general"]

    @Test("the example workflows load and behave as their comments say", arguments: Self.examples)
    func examplesLoad(name: String) throws {
        let path = ServiceProcess.repositoryDirectory + "/config/workflows/\(name).yaml"
        let workflow = try WorkflowFile.parse(try TextFile.read(path), file: path)
        #expect(workflow.id == name)
        #expect(!workflow.gates.isEmpty)
    }

    @Test("billing: a refund above 100 is a judgement call, below it is not")
    func billingRefund() throws {
        let path = ServiceProcess.repositoryDirectory + "/config/workflows/billing-support.yaml"
        let workflow = try WorkflowFile.parse(try TextFile.read(path), file: path)
        var context = CallContext()
        context.intents = ["request_refund"]
        context.slots = ["refund_amount": .text("150")]
        #expect(workflow.evaluate(context).gateID == "large-refund")
        context.slots = ["refund_amount": .number(40)]
        #expect(workflow.evaluate(context) == .continue)
    }

    static let valid = """
        id: w
        version: 1
        persona: p
        steps: [greet, verify]
        slots: [account.id]
        gates:
          - id: g
            category: payment
            when:
              intent: [pay]

        """

    @Test(
        "each validation error gives its line and column and what was expected",
        arguments: [
            (
                Self.valid.replacingFirst("persona: p", with: "persona: p\ncolour: blue"),
                "w.yaml:4:1: unknown key 'colour' in a workflow; expected id, version, persona, steps, slots, gates, default_skills"
            ),
            (
                Self.valid.replacingFirst("steps: [greet, verify]", with: "steps: greet"),
                "w.yaml:4:8: steps must be a list, not 'greet'"
            ),
            (
                Self.valid.replacingFirst("intent: [pay]", with: "intent_is: [pay]"),
                "w.yaml:10:7: unknown operator 'intent_is'; expected one of intent, slot, said, step, all, any, not"
            ),
            (
                Self.valid.replacingFirst("intent: [pay]", with: "slot: {name: account.id, above: 3}"),
                "w.yaml:10:32: unknown slot test 'above'; expected name and one of exists, equals, gt, gte, lt, lte, in"
            ),
            (
                Self.valid.replacingFirst("intent: [pay]", with: "slot: {name: account.id, gt: lots}"),
                "w.yaml:10:36: gt compares numbers, but 'lots' is not a number"
            ),
            (
                Self.valid.replacingFirst("      intent: [pay]\n", with: "      {}\n"),
                "w.yaml:10:7: empty condition; expected one of intent, slot, said, step, all, any, not"
            ),
            (
                Self.valid.replacingFirst("intent: [pay]", with: "step: refund"),
                "w.yaml:10:13: step 'refund' is not one of the workflow's steps [greet, verify]"
            ),
            (
                Self.valid.replacingFirst("category: payment", with: "category: payment\n    brief_lead: [card.pan]"),
                "w.yaml:9:18: brief_lead 'card.pan' is not one of the workflow's slots [account.id]"
            ),
            (
                Self.valid + "  - id: g\n    category: legal\n    when:\n      step: greet\n",
                "w.yaml:11:5: duplicate gate id 'g' (first on line 7); gate ids are unique"
            ),
            (
                Self.valid.replacingFirst("category: payment", with: "category: payment\n    priority: asap"),
                "w.yaml:9:15: priority must be one of low, normal, high, urgent"
            ),
            (
                Self.valid.replacingFirst("intent: [pay]", with: "intent: [pay]\n      said: [help]"),
                "w.yaml:10:7: a condition has one operator, found intent and said; wrap several in all: or any:"
            ),
            (
                Self.valid.replacingFirst("version: 1", with: "version: [1"),
                "w.yaml:3:8: not valid YAML: did not find expected ',' or ']'"
            ),
        ]
    )
    func validation(text: String, message: String) {
        let error = #expect(throws: InvalidConfigFile.self) { try WorkflowFile.parse(text, file: "w.yaml") }
        #expect(error?.problems.first?.description == message, "all: \(error?.description ?? "")")
    }

    @Test("every problem in a file is reported, not just the first")
    func allProblems() {
        let text = Self.valid.replacingFirst("persona: p", with: "persona: p\ncolour: blue")
            .replacingFirst("intent: [pay]", with: "step: nowhere")
        let error = #expect(throws: InvalidConfigFile.self) { try WorkflowFile.parse(text, file: "w.yaml") }
        #expect(error?.problems.count == 2)
    }
}
