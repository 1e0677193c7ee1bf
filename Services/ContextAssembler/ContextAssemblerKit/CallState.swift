import BatonProto

/// Everything one call has established, rebuilt after a restart by applying its stored events again in order.
struct CallState: Sendable {
    /// The call as the API shows it, without events or handoffs.
    var call: Baton_Context_V1_Call
    /// The workflow's slots, as the gate-evaluator gave them when the call opened.
    let declaredSlots: Set<String>
    /// Captured slots in the order they were first captured.
    var slotOrder: [String] = []
    var slots: [String: Baton_Context_V1_Fact] = [:]
    var intents: [String] = []
    var steps: [String] = []
    var currentStep = ""
    var verificationMethod = ""
    var proposedNextStep = ""
    var summary = ""
    /// The last turns, both speakers, oldest first.
    var recentTurns: [Baton_Context_V1_KeyTurn] = []
    /// The caller's last turns, for the gate-evaluator's `said`.
    var callerTurns: [String] = []
    /// How many events have been applied: the next event's `seq` is one more. (The ids themselves live in
    /// ``ContextCore/Entry``, outside this value, so that copying a state to change it never copies them.)
    var eventCount = 0
    /// Gates fired on this call, oldest first.
    var firedGates: [String] = []
    /// The call's handoffs, oldest first, as last stored.
    var handoffs: [Baton_Context_V1_Handoff] = []

    static let keptTurns = 6
    static let keptCallerTurns = 10

    init(call: Baton_Context_V1_Call, declaredSlots: Set<String>) {
        self.call = call
        self.declaredSlots = declaredSlots
    }

    var isOpen: Bool { self.call.closedAtUnixMs == 0 }

    /// The call as the API shows it without its events: with its handoffs.
    var shown: Baton_Context_V1_Call {
        var call = self.call
        call.handoffs = self.handoffs
        return call
    }

    /// The handoff in progress: routed and neither handed back nor ended.
    var activeHandoff: Baton_Context_V1_Handoff? {
        self.handoffs.last.flatMap { Self.inProgress($0.state) ? $0 : nil }
    }

    static func inProgress(_ state: Baton_Context_V1_Handoff.State) -> Bool {
        switch state {
        case .offered, .accepted, .connected, .greeted: true
        default: false
        }
    }

    /// Applies an event that has been validated and redacted; `at` is its time.
    mutating func apply(_ event: Baton_Context_V1_Event) {
        self.eventCount += 1
        switch event.kind {
        case .callerTurn(let turn):
            self.addTurn(.caller, turn.text, event)
            self.callerTurns.append(turn.text)
            if self.callerTurns.count > Self.keptCallerTurns {
                self.callerTurns.removeFirst()
            }
        case .aiTurn(let turn):
            self.addTurn(.ai, turn.text, event)
        case .slotCaptured(let slot):
            if self.slots[slot.name] == nil {
                self.slotOrder.append(slot.name)
            }
            var fact = Baton_Context_V1_Fact()
            fact.slot = slot.name
            fact.value = slot.value
            fact.confirmed = slot.confirmed
            fact.declared = self.declaredSlots.contains(slot.name)
            self.slots[slot.name] = fact
        case .intentDetected(let intent):
            if !self.intents.contains(intent.intent) {
                self.intents.append(intent.intent)
            }
        case .stepReached(let step):
            if !self.steps.contains(step.step) {
                self.steps.append(step.step)
            }
            self.currentStep = step.step
        case .identityVerified(let identity):
            self.verificationMethod = identity.method
        case .proposedNextStep(let text):
            self.proposedNextStep = text.text
        case .aiSummary(let text):
            self.summary = text.text
        case .aiEscalation, nil:
            break
        }
    }

    private mutating func addTurn(
        _ speaker: Baton_Context_V1_KeyTurn.Speaker,
        _ text: String,
        _ event: Baton_Context_V1_Event
    ) {
        var turn = Baton_Context_V1_KeyTurn()
        turn.speaker = speaker
        turn.text = text
        turn.atUnixMs = event.atUnixMs
        turn.eventID = event.eventID
        self.recentTurns.append(turn)
        if self.recentTurns.count > Self.keptTurns {
            self.recentTurns.removeFirst()
        }
    }

    /// The context the gate-evaluator decides on, with `event` as its trigger.
    func evaluationContext(trigger event: Baton_Context_V1_Event) -> Baton_Gates_V1_CallContext {
        var context = Baton_Gates_V1_CallContext()
        context.callID = self.call.callID
        for (name, fact) in self.slots {
            var value = Baton_Gates_V1_SlotValue()
            if let number = Double(fact.value.filter { $0 != "," }) {
                value.number = number
            } else if fact.value == "true" || fact.value == "false" {
                value.flag = fact.value == "true"
            } else {
                value.text = fact.value
            }
            context.slots[name] = value
        }
        context.intents = self.intents
        context.stepsReached = self.steps
        context.callerTurns = self.callerTurns
        context.firedGates = self.firedGates
        context.currentStep = self.currentStep
        var trigger = Baton_Gates_V1_Event()
        trigger.id = event.eventID
        switch event.kind {
        case .callerTurn(let turn):
            trigger.kind = .callerTurn
            trigger.text = turn.text
        case .aiTurn(let turn):
            trigger.kind = .aiTurn
            trigger.text = turn.text
        case .slotCaptured: trigger.kind = .slotCaptured
        case .intentDetected: trigger.kind = .intentDetected
        case .stepReached: trigger.kind = .stepReached
        case .aiEscalation(let escalation):
            trigger.kind = .aiEscalation
            trigger.text = escalation.reason
        case .identityVerified, .proposedNextStep, .aiSummary, nil:
            trigger.kind = .unspecified
        }
        context.trigger = trigger
        return context
    }

    /// Whether the event changes what a brief shows, so that an open brief gets a new revision.
    static func changesBrief(_ event: Baton_Context_V1_Event) -> Bool {
        switch event.kind {
        case .slotCaptured, .intentDetected, .stepReached, .identityVerified, .proposedNextStep, .aiSummary: true
        default: false
        }
    }
}
