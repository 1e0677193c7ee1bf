import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import GateEvaluatorKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `gate-evaluator benchmark`: evaluations per second for a 20-gate workflow against realistic contexts, in
/// process on one core and over the socket, beside two baselines over the same socket in the same run: Evaluate
/// of the same requests against a workflow with no gates (the runtime and protobuf, no evaluation) and
/// Health/Check (the runtime's own ceiling).
@main
struct GateEvaluatorBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate-evaluator-benchmark",
        abstract: "Measure evaluations per second (in process and over the socket); run by hand, not by the tests."
    )

    @Option(help: "Evaluations in process.") var inProcess = 2_000_000
    @Option(help: "Calls over the socket, for Evaluate and for the Health/Check baseline each.") var calls = 200_000
    @Option(help: "Calls in flight over the socket.") var inFlight = 64

    func run() async throws {
        let directory = "/tmp/baton-gates-bench-\(getpid())"
        mkdir(directory, 0o700)
        mkdir(directory + "/config", 0o700)
        mkdir(directory + "/config/workflows", 0o700)
        defer { _ = system("rm -rf '\(directory)'") }
        let yaml = Self.workflowYAML()
        let workflow = try WorkflowFile.parse(yaml, file: "bench.yaml")
        let contexts = Self.contexts(count: 1000)
        print("workflow: \(workflow.gates.count) gates; \(contexts.count) contexts, cycled")

        // In process, one core.
        let clock = ContinuousClock()
        var handoffs = 0
        let started = clock.now
        for index in 0..<self.inProcess {
            if case .handoff = workflow.evaluate(contexts[index % contexts.count]) {
                handoffs += 1
            }
        }
        let seconds = Benchmarking.seconds(clock.now - started)
        print(
            "in process: \(Int(Double(self.inProcess) / seconds)) evaluations/s on one core "
                + "(\(handoffs * 100 / self.inProcess)% hand off)"
        )

        // Over the socket: a gate-evaluator process of its own.
        let file = fopen(directory + "/config/workflows/bench.yaml", "w")
        fputs(yaml, file)
        fclose(file)
        let empty = fopen(directory + "/config/workflows/empty.yaml", "w")
        fputs("id: empty\nversion: 1\npersona: no gates\nsteps: []\ndefault_skills: [general]\ngates: []\n", empty)
        fclose(empty)
        let pid = try Benchmarking.spawnSibling(
            "gate-evaluator",
            ["--run-dir", directory + "/run", "--config-dir", directory + "/config", "--log-level", "error"]
        )
        defer { Benchmarking.stop(pid) }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let client = RPCClient(socketPath: directory + "/run/gate-evaluator.sock", logger: logger)
        try await Benchmarking.waitUntilServing(client)
        let requests = contexts.map { context -> Baton_Gates_V1_EvaluateRequest in
            var request = Baton_Gates_V1_EvaluateRequest()
            request.workflowID = "bench"
            request.context = Self.message(context)
            return request
        }
        let evaluate = try await self.rate(client) { index in
            _ = try await client.unary(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                requests[index % requests.count],
            )
        }
        let withoutGates = try await self.rate(client) { index in
            var request = requests[index % requests.count]
            request.workflowID = "empty"
            _ = try await client.unary(
                Baton_Gates_V1_GateEvaluator.Method.evaluate,
                request,
            )
        }
        let health = try await self.rate(client) { _ in
            _ = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
            )
        }
        await client.close()
        print("over the socket, \(self.inFlight) in flight: Evaluate \(Int(evaluate)) calls/s")
        print("baseline, same requests against a workflow with no gates: \(Int(withoutGates)) calls/s")
        print("baseline, same socket and run: Health/Check \(Int(health)) calls/s")
        print("Evaluate (20 gates) / Evaluate (no gates): \(String(Int(evaluate / withoutGates * 100)))%")
        print("Evaluate (20 gates) / Health/Check: \(String(Int(evaluate / health * 100)))%")
    }

    func rate(_ client: RPCClient, _ call: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        try await Benchmarking.rate(calls: self.calls, inFlight: self.inFlight, client: client, call).perSecond
    }

    /// A 20-gate workflow of the shapes real ones have: intents, slot thresholds, phrases, steps, and nesting.
    static func workflowYAML() -> String {
        var gates = ""
        for index in 0..<20 {
            let condition: String
            switch index % 5 {
            case 0: condition = "intent: [intent_\(index), other_\(index)]"
            case 1:
                condition =
                    "all:\n        - intent: [refund_\(index)]\n        - slot: {name: amount, gt: \(index * 50)}"
            case 2: condition = "said: [phrase number \(index), another phrase \(index)]"
            case 3:
                condition =
                    "any:\n        - step: step_\(index % 4)\n        - slot: {name: plan, in: [gold, platinum_\(index)]}"
            default: condition = "not:\n        slot: {name: verified, exists: true}"
            }
            let priority = ["low", "normal", "high", "urgent"][index % 4]
            gates += """
                  - id: gate-\(index)
                    category: judgement
                    priority: \(priority)
                    skills: [skill_\(index)]
                    brief_lead: [amount]
                    when:
                      \(condition)

                """
        }
        return """
            id: bench
            version: 1
            persona: benchmark
            steps: [step_0, step_1, step_2, step_3]
            slots: [amount, plan, verified]
            default_skills: [general]
            gates:
            \(gates)
            """
    }

    /// Contexts like a call's: a few slots, an intent or two, recent turns; most match no gate.
    static func contexts(count: Int) -> [CallContext] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in
            var context = CallContext()
            context.slots["verified"] = .flag(true)
            context.slots["amount"] = .number(Double(Int.random(in: 0...2000, using: &generator)))
            context.slots["plan"] = .text(["basic", "silver", "gold"].randomElement(using: &generator)!)
            context.intents = ["ask_question", "intent_\(Int.random(in: 0...200, using: &generator))"]
            context.stepsReached = ["step_\(Int.random(in: 4...6, using: &generator))"]
            context.callerTurns = [
                "hello I have a question about my bill",
                "it says I was charged twice this month and I would like that fixed",
                "phrase number \(Int.random(in: 0...400, using: &generator))",
            ]
            return context
        }
    }

    static func message(_ context: CallContext) -> Baton_Gates_V1_CallContext {
        var message = Baton_Gates_V1_CallContext()
        for (name, value) in context.slots {
            var slot = Baton_Gates_V1_SlotValue()
            switch value {
            case .text(let text): slot.text = text
            case .number(let number): slot.number = number
            case .flag(let flag): slot.flag = flag
            }
            message.slots[name] = slot
        }
        message.intents = Array(context.intents)
        message.stepsReached = Array(context.stepsReached)
        message.callerTurns = context.callerTurns
        return message
    }
}
