import BatonProto
import BatonRPC

/// `baton.supervisor.v1.Supervisor`, answered from the ``ProcessSupervisor``.
struct SupervisorAPI: Sendable {
    let supervisor: ProcessSupervisor
    /// Drains the supervisor as SIGTERM does: its processes stop, then its socket.
    let shutdown: @Sendable () async -> Void

    var methods: RPCMethods {
        var methods = RPCMethods()
        let supervisor = self.supervisor
        methods.unary(Baton_Supervisor_V1_Supervisor.Method.status) {
            (_: Baton_Supervisor_V1_StatusRequest, _) -> Baton_Supervisor_V1_StatusReply in
            var reply = Baton_Supervisor_V1_StatusReply()
            reply.processes = await supervisor.status()
            return reply
        }
        methods.unary(Baton_Supervisor_V1_Supervisor.Method.start) {
            (request: Baton_Supervisor_V1_ProcessRequest, _) -> Baton_Supervisor_V1_ProcessReply in
            let names = try await supervisor.names(matching: request.name)
            for name in names {
                await supervisor.start(name)
            }
            await supervisor.settle(names)
            return Self.reply(await supervisor.status(of: names))
        }
        methods.unary(Baton_Supervisor_V1_Supervisor.Method.stop) {
            (request: Baton_Supervisor_V1_ProcessRequest, _) -> Baton_Supervisor_V1_ProcessReply in
            let names = try await supervisor.names(matching: request.name)
            await withDiscardingTaskGroup { group in
                for name in names {
                    group.addTask { await supervisor.stop(name) }
                }
            }
            return Self.reply(await supervisor.status(of: names))
        }
        methods.unary(Baton_Supervisor_V1_Supervisor.Method.restart) {
            (request: Baton_Supervisor_V1_ProcessRequest, _) -> Baton_Supervisor_V1_ProcessReply in
            let names = try await supervisor.names(matching: request.name)
            await withDiscardingTaskGroup { group in
                for name in names {
                    group.addTask { await supervisor.restart(name) }
                }
            }
            await supervisor.settle(names)
            return Self.reply(await supervisor.status(of: names))
        }
        methods.serverStreaming(Baton_Supervisor_V1_Supervisor.Method.logs) {
            (request: Baton_Supervisor_V1_LogsRequest, _, writer: RPCStreamWriter<Baton_Supervisor_V1_LogLine>) in
            let outputs = try await supervisor.outputs(of: request.name)
            let count = request.lines == 0 ? nil : Int(request.lines)
            guard request.follow else {
                for line in Self.interleaved(outputs.map { $0.kept(last: count) }, last: count) {
                    try await writer.send(line)
                }
                return
            }
            let followed = outputs.map { $0.follow(last: count) }
            for line in Self.interleaved(followed.map(\.0), last: count) {
                try await writer.send(line)
            }
            // Every output's later lines, in the order they come.
            let (merged, continuation) = AsyncStream<Baton_Supervisor_V1_LogLine>.makeStream(
                bufferingPolicy: .bufferingNewest(ChildOutput.capacity)
            )
            try await withThrowingDiscardingTaskGroup { group in
                for (_, later) in followed {
                    group.addTask {
                        for await line in later {
                            continuation.yield(line)
                        }
                    }
                }
                group.addTask {
                    for await line in merged {
                        try await writer.send(line)
                    }
                }
            }
        }
        methods.serverStreaming(Baton_Supervisor_V1_Supervisor.Method.events) {
            (_: Baton_Supervisor_V1_EventsRequest, _, writer: RPCStreamWriter<Baton_Supervisor_V1_ProcessEvent>) in
            // Subscribe before the snapshot, so that no change falls between the two.
            let changes = supervisor.events()
            for process in await supervisor.status() {
                var current = Baton_Supervisor_V1_ProcessEvent()
                current.process = process
                current.previous = .unspecified
                current.unixMs = ChildOutput.nowUnixMs()
                try await writer.send(current)
            }
            for await event in changes {
                try await writer.send(event)
            }
        }
        let shutdown = self.shutdown
        methods.unary(Baton_Supervisor_V1_Supervisor.Method.shutdown) {
            (_: Baton_Supervisor_V1_ShutdownRequest, _) -> Baton_Supervisor_V1_ShutdownReply in
            await shutdown()
            return Baton_Supervisor_V1_ShutdownReply()
        }
        return methods
    }

    /// Several outputs' kept lines as one, oldest first (by when each line came), the last `count` of them.
    static func interleaved(
        _ outputs: [[Baton_Supervisor_V1_LogLine]],
        last count: Int?
    ) -> [Baton_Supervisor_V1_LogLine] {
        guard outputs.count > 1 else {
            return outputs.first ?? []
        }
        let merged = outputs.joined().enumerated().sorted {
            ($0.element.unixMs, $0.offset) < ($1.element.unixMs, $1.offset)
        }.map(\.element)
        return Array(merged.suffix(count ?? merged.count))
    }

    static func reply(_ processes: [Baton_Supervisor_V1_ProcessStatus]) -> Baton_Supervisor_V1_ProcessReply {
        var reply = Baton_Supervisor_V1_ProcessReply()
        reply.processes = processes
        return reply
    }
}
