import BatonProto
import BatonRPC
import BatonRuntime

/// `baton.gates.v1.GateEvaluator`, answered from the ``WorkflowLibrary`` once it is loaded.
struct GatesAPI: Sendable {
    let prepared: Prepared<WorkflowLibrary>

    var methods: RPCMethods {
        var methods = RPCMethods()
        let prepared = self.prepared
        // On the connection's loop, like every unary handler. Tried on the concurrency pool: 56k calls/s against
        // 62k here, since the two thread hops cost more than the second core gave (`gate-evaluator benchmark`).
        methods.unary(Baton_Gates_V1_GateEvaluator.Method.evaluate) {
            (request: Baton_Gates_V1_EvaluateRequest, _) -> Baton_Gates_V1_EvaluateReply in
            let library = try prepared.get()
            guard !request.workflowID.isEmpty else {
                throw RPCError.invalidArgument("workflow_id is empty; expected the id of a loaded workflow")
            }
            let loaded = try Self.find(request.workflowID, in: library)
            return Self.reply(loaded.workflow.evaluate(Self.context(request.context)), version: loaded.workflow.version)
        }
        methods.unary(Baton_Gates_V1_GateEvaluator.Method.listWorkflows) {
            (_: Baton_Gates_V1_ListWorkflowsRequest, _) -> Baton_Gates_V1_ListWorkflowsReply in
            let library = try prepared.get()
            var reply = Baton_Gates_V1_ListWorkflowsReply()
            reply.workflows = library.all.map(Self.summary)
            reply.problems = library.problems.map(Self.problem)
            return reply
        }
        methods.unary(Baton_Gates_V1_GateEvaluator.Method.getWorkflow) {
            (request: Baton_Gates_V1_GetWorkflowRequest, _) -> Baton_Gates_V1_GetWorkflowReply in
            let library = try prepared.get()
            let loaded = try Self.find(request.id, in: library)
            var reply = Baton_Gates_V1_GetWorkflowReply()
            reply.workflow = Self.summary(loaded)
            reply.steps = loaded.workflow.steps
            reply.slots = loaded.workflow.slots
            reply.defaultSkills = loaded.workflow.defaultSkills
            reply.gates = loaded.workflow.gates.map { gate in
                var info = Baton_Gates_V1_GateInfo()
                info.id = gate.id
                info.category = gate.category
                info.skills = gate.skills
                info.priority = Self.priority(gate.priority)
                info.briefLead = gate.briefLead
                info.once = gate.once
                info.when = gate.when.summary
                return info
            }
            return reply
        }
        methods.unary(Baton_Gates_V1_GateEvaluator.Method.validateWorkflow) {
            (request: Baton_Gates_V1_ValidateWorkflowRequest, _) -> Baton_Gates_V1_ValidateWorkflowReply in
            var reply = Baton_Gates_V1_ValidateWorkflowReply()
            do {
                let file = request.fileName.isEmpty ? "workflow.yaml" : request.fileName
                reply.workflowID = try WorkflowFile.parse(request.yaml, file: file).id
                reply.valid = true
            } catch let error as InvalidConfigFile {
                reply.problems = error.problems.map(Self.problem)
            }
            return reply
        }
        methods.unary(Baton_Gates_V1_GateEvaluator.Method.reload) {
            (_: Baton_Gates_V1_ReloadRequest, _) -> Baton_Gates_V1_ReloadReply in
            let library = try prepared.get()
            var reply = Baton_Gates_V1_ReloadReply()
            reply.problems = try library.reload().map(Self.problem)  // a ConfigurationError is FAILED_PRECONDITION
            reply.workflows = library.all.map(Self.summary)
            return reply
        }
        return methods
    }

    static func find(_ id: String, in library: WorkflowLibrary) throws(RPCError) -> WorkflowLibrary.Loaded {
        guard let loaded = library.workflow(id) else {
            let known = library.all.map(\.workflow.id).joined(separator: ", ")
            throw RPCError.notFound("no workflow '\(id)' is loaded; loaded: \(known.isEmpty ? "none" : known)")
        }
        return loaded
    }

    static func context(_ context: Baton_Gates_V1_CallContext) -> CallContext {
        var result = CallContext()
        for (name, value) in context.slots {
            switch value.value {
            case .text(let text): result.slots[name] = .text(text)
            case .number(let number): result.slots[name] = .number(number)
            case .flag(let flag): result.slots[name] = .flag(flag)
            case nil: break
            }
        }
        result.intents = Set(context.intents)
        result.stepsReached = Set(context.stepsReached)
        result.callerTurns = context.callerTurns
        result.firedGates = Set(context.firedGates)
        result.aiEscalation = context.trigger.kind == .aiEscalation
        result.currentStep = context.currentStep
        return result
    }

    static func reply(_ decision: Decision, version: String) -> Baton_Gates_V1_EvaluateReply {
        var reply = Baton_Gates_V1_EvaluateReply()
        reply.workflowVersion = version
        switch decision {
        case .continue:
            reply.outcome = .continue
        case .handoff(let gate, let because, let others):
            reply.outcome = .handoff
            reply.gateID = gate.id
            reply.category = gate.category
            reply.skills = gate.skills
            reply.priority = Self.priority(gate.priority)
            reply.briefLead = gate.briefLead
            reply.matched = because
            reply.alsoMatched = others
        case .undesigned(let skills, let step):
            reply.outcome = .handoff
            reply.undesigned = true
            reply.category = "ai_escalation"
            reply.skills = skills
            reply.step = step
            reply.priority = .normal
            reply.matched = "the AI escalated, and no gate of the workflow matched"
        }
        return reply
    }

    static func priority(_ priority: Priority) -> Baton_Gates_V1_Priority {
        switch priority {
        case .low: .low
        case .normal: .normal
        case .high: .high
        case .urgent: .urgent
        }
    }

    static func summary(_ loaded: WorkflowLibrary.Loaded) -> Baton_Gates_V1_WorkflowSummary {
        var summary = Baton_Gates_V1_WorkflowSummary()
        summary.id = loaded.workflow.id
        summary.version = loaded.workflow.version
        summary.persona = loaded.workflow.persona
        summary.source = loaded.source
        summary.gates = UInt32(loaded.workflow.gates.count)
        summary.lastValidCopy = loaded.lastValidCopy ?? ""
        return summary
    }

    static func problem(_ problem: ConfigProblem) -> Baton_Gates_V1_Problem {
        var result = Baton_Gates_V1_Problem()
        result.file = problem.file
        result.line = UInt32(problem.line)
        result.column = UInt32(problem.column)
        result.message = problem.message
        return result
    }
}
