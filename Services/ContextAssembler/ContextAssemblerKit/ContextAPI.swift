package import BatonProto
package import BatonRPC
package import BatonRuntime

/// `baton.context.v1.ContextAssembler`, answered by a ``ContextCore`` once it is open. Every handler runs on the
/// concurrency pool: each waits for the store and for the other processes.
package struct ContextAPI: Sendable {
    package let prepared: Prepared<ContextCore>

    package init(prepared: Prepared<ContextCore>) {
        self.prepared = prepared
    }

    package var methods: RPCMethods {
        typealias Service = Baton_Context_V1_ContextAssembler
        var methods = RPCMethods()
        let prepared = self.prepared
        methods.unary(Service.Method.openCall, on: .concurrencyPool) { request, _ in
            try await prepared.get().openCall(request)
        }
        // On the event loop, which the assembler's clients share: a Record computes for microseconds and
        // otherwise waits (for the gate-evaluator, the router, the store), and resumes where it started.
        methods.unary(Service.Method.record, on: .eventLoop) { request, _ in
            try await prepared.get().record(request)
        }
        methods.serverStreaming(Service.Method.watchBriefs) { request, _, writer in
            let core = try prepared.get()
            try ContextCore.validateID(request.agentID, "agent_id")
            for await update in try await core.watchBriefs(request.destinationID) {
                try await writer.send(update)
                if update.kind == .open || update.kind == .new {
                    await core.delivered(update.brief)
                }
            }
        }
        methods.unary(Service.Method.ackBrief, on: .concurrencyPool) { request, _ in
            try await prepared.get().ackBrief(request)
        }
        methods.unary(Service.Method.accept, on: .concurrencyPool) { request, _ in
            try await prepared.get().accept(request)
        }
        methods.unary(Service.Method.decline, on: .concurrencyPool) { request, _ in
            try await prepared.get().decline(request)
        }
        methods.unary(Service.Method.reportTransfer, on: .concurrencyPool) { request, _ in
            try await prepared.get().reportTransfer(request)
        }
        methods.unary(Service.Method.reportRepeat, on: .concurrencyPool) { request, _ in
            try await prepared.get().reportRepeat(request)
        }
        methods.unary(Service.Method.handBack, on: .concurrencyPool) { request, _ in
            try await prepared.get().handBack(request)
        }
        methods.serverStreaming(Service.Method.watchCall) { request, _, writer in
            for await update in try prepared.get().watchCall(request.callID) {
                try await writer.send(update)
            }
        }
        methods.unary(Service.Method.getBrief, on: .concurrencyPool) { request, _ in
            try prepared.get().getBrief(request)
        }
        methods.unary(Service.Method.getCall, on: .concurrencyPool) { request, _ in
            try prepared.get().getCall(request.callID)
        }
        methods.unary(Service.Method.listCalls, on: .concurrencyPool) { _, _ in
            try prepared.get().listCalls()
        }
        methods.unary(Service.Method.closeCall, on: .concurrencyPool) { request, _ in
            try await prepared.get().closeCall(request)
        }
        return methods
    }
}
