import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Logging
import SwiftProtobuf
import Testing

@testable import GateEvaluatorKit

/// The gate-evaluator's handlers, served from this process over a real socket through their generated
/// registration and called through the generated client: no executable started.
@Suite("Gates API in process")
struct GatesAPITests {
    @Test("every method of baton.gates.v1.GateEvaluator has a handler, and Evaluate answers through the typed client")
    func servesEveryMethod() async throws {
        let library = WorkflowLibrary(
            directory: ServiceProcess.repositoryDirectory + "/config/workflows",
            logger: Logger(label: "gates-api-test")
        )
        try library.reload()
        let prepared = Prepared<WorkflowLibrary>("the workflows")
        prepared.set(library)
        let methods = GatesAPI(prepared: prepared).methods
        #expect(methods.serves(Baton_Gates_V1_GateEvaluator.info))
        try await withServer(methods) { client, _ in
            let gates = Baton_Gates_V1_GateEvaluator.Client(client)
            var request = Baton_Gates_V1_EvaluateRequest()
            request.workflowID = "billing-support"
            request.context.intents = ["make_payment"]
            let reply = try await gates.evaluate(request)
            #expect(reply.outcome == .handoff && reply.gateID == "take-payment" && !reply.undesigned)
            let listed = try await gates.listWorkflows()
            #expect(listed.workflows.map(\.id).contains("billing-support"))
            let unknown = await #expect(throws: RPCError.self) {
                try await gates.getWorkflow(.with { $0.id = "nope" })
            }
            #expect(unknown?.code == .notFound)
        }
    }

    @Test("before the workflows are loaded, a call answers UNAVAILABLE, which the caller may retry")
    func unavailableWhilePreparing() async throws {
        let methods = GatesAPI(prepared: Prepared<WorkflowLibrary>("the workflows")).methods
        try await withServer(methods) { client, _ in
            let error = await #expect(throws: RPCError.self) {
                try await Baton_Gates_V1_GateEvaluator.Client(client).listWorkflows()
            }
            #expect(error?.code == .unavailable)
        }
    }
}
