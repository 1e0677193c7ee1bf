import Testing

@testable import GateEvaluatorKit

/// Gate evaluation: every condition operator, priority and ties, once per call, and undesigned escalation.
@Suite("Evaluation")
struct EvaluationTests {
    func gate(
        _ id: String,
        _ when: Condition,
        priority: Priority = .normal,
        category: String = "payment",
        once: Bool = true
    ) -> Gate {
        Gate(id: id, category: category, when: when, skills: ["s-\(id)"], priority: priority, briefLead: [], once: once)
    }

    func workflow(_ gates: [Gate]) -> Workflow {
        Workflow(
            id: "billing",
            version: "1",
            persona: "billing support",
            steps: ["greet", "verify", "refund"],
            slots: ["refund_amount", "plan"],
            gates: gates,
            defaultSkills: ["general"]
        )
    }

    @Test(
        "each condition operator holds exactly when it should",
        arguments: [
            (Condition.intent(["make_payment", "update_card"]), true),
            (.intent(["cancel"]), false),
            (.slot("refund_amount", .exists(true)), true),
            (.slot("missing", .exists(true)), false),
            (.slot("missing", .exists(false)), true),
            (.slot("plan", .equals(.text("GOLD"))), true),
            (.slot("refund_amount", .equals(.number(250))), true),
            (.slot("refund_amount", .greaterThan(249.5)), true),
            (.slot("refund_amount", .greaterThan(250)), false),
            (.slot("refund_amount", .atLeast(250)), true),
            (.slot("refund_amount", .lessThan(250)), false),
            (.slot("refund_amount", .atMost(250)), true),
            (.slot("plan", .greaterThan(1)), false),
            (.slot("plan", .isIn([.text("silver"), .text("gold")])), true),
            (.slot("plan", .isIn([.text("silver")])), false),
            (.said(["speak to a person"]), true),
            (.said(["person"]), true),
            (.said(["pers"]), false),
            (.step("verify"), true),
            (.step("refund"), false),
            (.all([.intent(["make_payment"]), .step("verify")]), true),
            (.all([.intent(["make_payment"]), .step("refund")]), false),
            (.any([.step("refund"), .said(["person"])]), true),
            (.any([.step("refund"), .said(["manager"])]), false),
            (.not(.step("refund")), true),
            (.not(.step("verify")), false),
        ]
    )
    func operators(condition: Condition, expected: Bool) {
        var context = CallContext()
        context.intents = ["make_payment"]
        context.slots = ["refund_amount": .text("250.00"), "plan": .text("gold")]
        context.callerTurns = ["Hi", "Can I Speak to a person, please?"]
        context.stepsReached = ["greet", "verify"]
        let holds = condition.holds(in: context, turns: Speech(context.callerTurns), explain: true) != nil
        #expect(holds == expected, "\(condition.summary)")
    }

    @Test("the matched condition is explained in words")
    func explanation() {
        var context = CallContext()
        context.intents = ["make_payment"]
        let decision = self.workflow([self.gate("pay", .intent(["make_payment", "update_card"]))]).evaluate(context)
        guard case .handoff(let gate, let because, _) = decision else {
            Issue.record("expected a handoff, got \(decision)")
            return
        }
        #expect(gate.id == "pay")
        #expect(because == "intent make_payment is in [make_payment, update_card]")
    }

    @Test("the highest priority wins, ties go to the earlier gate, and the others are listed")
    func priorityAndTies() {
        var context = CallContext()
        context.stepsReached = ["verify"]
        let gates = [
            self.gate("first-normal", .step("verify")),
            self.gate("high", .step("verify"), priority: .high),
            self.gate("second-high", .step("verify"), priority: .high),
            self.gate("not-matching", .step("refund"), priority: .urgent),
            self.gate("low", .step("verify"), priority: .low),
        ]
        let decision = self.workflow(gates).evaluate(context)
        guard case .handoff(let gate, _, let others) = decision else {
            Issue.record("expected a handoff, got \(decision)")
            return
        }
        #expect(gate.id == "high")
        #expect(others == ["second-high", "first-normal", "low"])
    }

    @Test("a once gate does not fire again on the same call; a repeatable one does")
    func oncePerCall() {
        var context = CallContext()
        context.stepsReached = ["verify"]
        let workflow = self.workflow([
            self.gate("once", .step("verify"), priority: .high),
            self.gate("again", .step("verify"), once: false),
        ])
        #expect(workflow.evaluate(context).gateID == "once")
        context.firedGates = ["once", "again"]
        #expect(workflow.evaluate(context).gateID == "again")
    }

    @Test("an AI escalation that matches no gate is an undesigned handoff with the default skills and the step")
    func undesignedEscalation() {
        var context = CallContext()
        context.aiEscalation = true
        context.currentStep = "verify"
        let workflow = self.workflow([self.gate("pay", .intent(["make_payment"]))])
        #expect(workflow.evaluate(context) == .undesigned(skills: ["general"], step: "verify"))
        context.intents = ["make_payment"]
        #expect(workflow.evaluate(context).gateID == "pay", "a designed gate wins over the escalation")
        context.aiEscalation = false
        context.intents = []
        #expect(workflow.evaluate(context) == .continue)
    }
}

extension Decision {
    var gateID: String? {
        if case .handoff(let gate, _, _) = self {
            return gate.id
        }
        return nil
    }
}
