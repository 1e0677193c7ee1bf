package import BatonProto
package import BatonRPC
import BatonStore
import Foundation
import GRDB
package import Logging
import SwiftProtobuf
import Synchronization

/// The assembler's state and every operation of its API. Each call's changes run one at a time under the call's
/// ``SerialLock``: validated, redacted, decided (the gate-evaluator, the router), written with their outbox events
/// in one transaction, and only then applied in memory, published to the desks and the AI, and answered.
package final class ContextCore: Sendable {
    /// One open call.
    final class Entry: Sendable {
        let lock = SerialLock()
        let state: Mutex<CallState>
        /// The ids of the call's stored events; added to only once their write is durable.
        let eventIDs: Mutex<Set<String>>

        init(_ state: CallState, eventIDs: Set<String> = []) {
            self.state = Mutex(state)
            self.eventIDs = Mutex(eventIDs)
        }

        func recorded(_ id: String) -> Bool {
            self.eventIDs.withLock { $0.contains(id) }
        }

        /// Stores `state` as the call's, with the ids of the events it applied.
        func commit(_ state: CallState, events: [String]) {
            self.state.withLock { $0 = state }
            if !events.isEmpty {
                self.eventIDs.withLock { ids in
                    for id in events {
                        ids.insert(id)
                    }
                }
            }
        }

        var current: CallState { self.state.withLock { $0 } }
    }

    let store: Store
    let gates: Baton_Gates_V1_GateEvaluator.Client
    let router: Baton_Routing_V1_Router.Client
    let logger: Logger
    let briefs = BriefBoard()
    let callUpdates = CallBoard()
    /// Rung after each write that added outbox events.
    let outboxAdded = Doorbell()
    private let calls = Mutex<[String: Entry]>([:])
    /// The open calls' handoffs: handoff id → call id.
    private let handoffCalls = Mutex<[String: String]>([:])
    private let opening = SerialLock()
    /// How long Record and the handoff methods keep retrying a dependency that is unavailable.
    let dependencyBudget: Duration

    static let maxText = 4000
    static let maxID = 128
    static let maxFuture: Int64 = 3_600_000
    /// Attempts to route one handoff, counting the first: a transfer failing more often ends in the fallback.
    static let maxAttempts: UInt32 = 3

    /// Opens the store at `database` and loads every open call from it.
    package init(
        database: String,
        gates: Baton_Gates_V1_GateEvaluator.Client,
        router: Baton_Routing_V1_Router.Client,
        logger: Logger,
        dependencyBudget: Duration = .seconds(5)
    ) throws {
        self.store = try Store(path: database, migrator: ContextStore.migrator)
        self.gates = gates
        self.router = router
        self.logger = logger
        self.dependencyBudget = dependencyBudget
        let open = try self.store.pool.read { try ContextStore.openCalls(in: $0) }
        var entries: [String: Entry] = [:]
        var handoffs: [String: String] = [:]
        for (state, ids) in open {
            entries[state.call.callID] = Entry(state, eventIDs: ids)
            for handoff in state.handoffs {
                handoffs[handoff.handoffID] = state.call.callID
            }
            if let active = state.activeHandoff, active.plan.outcome == .transfer {
                self.briefs.offer(active.plan.brief)
            }
        }
        self.calls.withLock { $0 = entries }
        self.handoffCalls.withLock { $0 = handoffs }
        logger.info(
            "context-assembler: loaded open calls",
            metadata: ["baton.calls": "\(entries.count)", "baton.handoffs": "\(handoffs.count)"]
        )
    }

    static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }

    // MARK: - Calls

    package func openCall(_ request: Baton_Context_V1_OpenCallRequest) async throws -> Baton_Context_V1_Call {
        try Self.validateID(request.callID, "call_id")
        try Self.validateID(request.workflowID, "workflow_id")
        let now = Self.now()
        let startedAt = try Self.time(request.startedAtUnixMs, "started_at_unix_ms", now: now)
        return try await self.opening.run {
            if let existing = try self.storedCall(request.callID) {
                guard existing.workflowID == request.workflowID else {
                    throw RPCError(
                        code: .alreadyExists,
                        message: "call '\(request.callID)' is already open with workflow '\(existing.workflowID)', "
                            + "not '\(request.workflowID)'"
                    )
                }
                return existing
            }
            let workflow = try await self.dependency("the gate-evaluator") { options in
                try await self.gates.getWorkflow(.with { $0.id = request.workflowID }, options: options)
            }
            var call = Baton_Context_V1_Call()
            call.callID = request.callID
            call.workflowID = request.workflowID
            call.caller = request.caller
            call.caller.phoneNumber = Redactor.redact(request.caller.phoneNumber)
            call.startedAtUnixMs = startedAt
            let declared = workflow.slots
            try await self.store.write { [call] db in
                try ContextStore.insertCall(call, declaredSlots: declared, in: db)
            }
            self.calls.withLock { $0[call.callID] = Entry(CallState(call: call, declaredSlots: Set(declared))) }
            return call
        }
    }

    /// The call as the API shows it without events: from memory while open, else from the store.
    private func storedCall(_ id: String) throws -> Baton_Context_V1_Call? {
        if let entry = self.calls.withLock({ $0[id] }) {
            return entry.current.shown
        }
        return try self.store.pool.read { db in
            var call = try ContextStore.call(id, in: db)
            call?.events = []
            return call
        }
    }

    package func getCall(_ id: String) throws -> Baton_Context_V1_Call {
        try Self.validateID(id, "call_id")
        guard let call = try self.store.pool.read({ try ContextStore.call(id, in: $0) }) else {
            throw RPCError.notFound("no call '\(id)'")
        }
        return call
    }

    package func listCalls() -> Baton_Context_V1_ListCallsReply {
        let entries = self.calls.withLock { Array($0.values) }
        var reply = Baton_Context_V1_ListCallsReply()
        reply.calls = entries.map(\.current.shown).sorted {
            ($0.startedAtUnixMs, $0.callID) > ($1.startedAtUnixMs, $1.callID)
        }
        return reply
    }

    /// The open call `id`, or INVALID_ARGUMENT saying whether it is closed or unknown.
    private func entry(_ id: String) throws -> Entry {
        if let entry = self.calls.withLock({ $0[id] }) {
            return entry
        }
        let closed = try self.store.pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT closed_at IS NOT NULL FROM calls WHERE id = ?", arguments: [id])
        }
        if closed == true {
            throw RPCError.invalidArgument("call_id '\(id)' is closed; expected an open call")
        }
        throw RPCError.invalidArgument("call_id '\(id)' is not an open call; open it with OpenCall first")
    }

    package func closeCall(_ request: Baton_Context_V1_CloseCallRequest) async throws -> Baton_Context_V1_Call {
        try Self.validateID(request.callID, "call_id")
        let now = Self.now()
        let at = try Self.time(request.atUnixMs, "at_unix_ms", now: now)
        guard let entry = self.calls.withLock({ $0[request.callID] }) else {
            guard let stored = try self.storedCall(request.callID) else {
                throw RPCError.notFound("no call '\(request.callID)'")
            }
            return stored  // closed before: the same answer
        }
        return try await entry.lock.run {
            try await self.close(entry, at: at, reason: .callClosed)
        }
    }

    /// Closes the call under its lock: releases the open reservation, ends the active handoff, records call_ended.
    private func close(
        _ entry: Entry,
        at: Int64,
        reason: Baton_Context_V1_BriefUpdate.Reason
    ) async throws -> Baton_Context_V1_Call {
        var state = entry.current
        guard state.isOpen else {
            return state.shown
        }
        var withdrawn: Baton_Context_V1_Brief?
        if var active = state.activeHandoff {
            try await self.releaseReservation(
                of: active,
                outcome: active.state == .greeted ? .connected : .abandoned
            )
            if active.plan.outcome == .transfer {
                withdrawn = active.plan.brief
            }
            active.state = .ended
            active.reservationID = ""
            state.handoffs[state.handoffs.count - 1] = active
        }
        state.call.closedAtUnixMs = at
        let ended = state.handoffs.map { Self.metricsEvent(.callEnded, id: "call_ended", of: $0, at: at) }
        let snapshot = state
        try await self.store.write { db in
            try ContextStore.closeCall(snapshot.call, in: db)
            if let last = snapshot.handoffs.last {
                try ContextStore.saveHandoff(last, seq: snapshot.handoffs.count, in: db)
            }
            try ContextStore.enqueue(ended, in: db)
        }
        entry.state.withLock { $0 = snapshot }
        self.calls.withLock { _ = $0.removeValue(forKey: snapshot.call.callID) }
        self.handoffCalls.withLock { map in
            for handoff in snapshot.handoffs {
                map.removeValue(forKey: handoff.handoffID)
            }
        }
        if !ended.isEmpty {
            self.outboxAdded.ring()
        }
        if let withdrawn {
            self.briefs.withdraw(withdrawn, reason: reason)
        }
        let call = snapshot.shown
        var update = Baton_Context_V1_CallUpdate()
        update.kind = .callClosed
        update.callID = call.callID
        update.atUnixMs = at
        if let last = snapshot.handoffs.last {
            update.handoff = last
        }
        self.callUpdates.publish(update)
        return call
    }

    // MARK: - Record

    package func record(_ request: Baton_Context_V1_RecordRequest) async throws -> Baton_Context_V1_RecordReply {
        let now = Self.now()
        let received = try Self.validated(request.event, now: now)
        let entry = try self.entry(received.callID)
        return try await entry.lock.run {
            let callID = received.callID
            let eventID = received.eventID
            let state = entry.current
            if entry.recorded(eventID) {
                let stored = try await self.store.pool.read { db in
                    try ContextStore.reply(call: callID, event: eventID, in: db)
                }
                guard var reply = stored else {
                    throw RPCError(code: .internal, message: "event '\(eventID)' has no stored reply")
                }
                reply.duplicate = true
                return reply
            }
            guard state.isOpen else {
                throw RPCError.invalidArgument("call_id '\(callID)' is closed; expected an open call")
            }
            let event = Self.redacted(received)
            var next = state
            next.apply(event)
            if let active = state.activeHandoff {
                return try await self.recordDuringHandoff(event, active: active, state: next, entry: entry, now: now)
            }
            let decision = try await self.dependency("the gate-evaluator") { options in
                try await self.gates.evaluate(
                    .with {
                        $0.workflowID = state.call.workflowID
                        $0.context = next.evaluationContext(trigger: event)
                    },
                    options: options
                )
            }
            guard decision.outcome == .handoff else {
                var reply = Baton_Context_V1_RecordReply()
                reply.outcome = .continue
                let seq = next.eventCount
                try await self.store.write { [reply] db in
                    try ContextStore.insertEvent(event, seq: seq, reply: reply, recordedAt: now, in: db)
                }
                entry.commit(next, events: [eventID])
                return reply
            }
            return try await self.startHandoff(decision, trigger: event, state: next, entry: entry, now: now)
        }
    }

    /// A gate fired on `trigger`: freeze the brief, route, store it all in one transaction, deliver the brief.
    private func startHandoff(
        _ decision: Baton_Gates_V1_EvaluateReply,
        trigger: Baton_Context_V1_Event,
        state: CallState,
        entry: Entry,
        now: Int64
    ) async throws -> Baton_Context_V1_RecordReply {
        var state = state
        // The same id on a retry of this event (nothing was applied), so that the router answers its decision.
        let handoffID = "\(state.call.callID)-h\(state.handoffs.count + 1)"
        var head = Baton_Context_V1_Brief()
        head.handoffID = handoffID
        head.revision = 1
        head.gateID = decision.gateID
        head.category = decision.category
        head.priority = Self.priorityName(decision.priority)
        head.why = decision.matched
        head.undesigned = decision.undesigned
        head.briefLead = decision.briefLead
        head.firedAtUnixMs = now
        head.revisedAtUnixMs = now
        head.token = Self.token()
        var brief = Briefing.brief(head, of: state, trigger: trigger.eventID)
        let routed = try await self.dependency("the router") { options in
            try await self.router.route(
                .with {
                    $0.callID = state.call.callID
                    $0.handoffID = handoffID
                    $0.category = decision.category
                    $0.skills = decision.skills
                    $0.priority = Baton_Routing_V1_Priority(rawValue: decision.priority.rawValue) ?? .normal
                    $0.language = state.call.caller.language
                    $0.briefSummary = Briefing.whisper(brief)
                },
                options: options
            )
        }
        var handoff = Baton_Context_V1_Handoff()
        handoff.handoffID = handoffID
        handoff.callID = state.call.callID
        brief.destinationID = routed.destinationID
        brief.predictedLiveHumanMs = routed.predictedLiveHumanMs
        handoff.plan = Self.plan(routed, brief: brief)
        handoff.state = routed.outcome == .routed ? .offered : .noDestination
        handoff.reservationID = routed.reservationID
        var metrics = [
            Self.metricsEvent(.gateFired, id: "gate_fired", of: handoff, at: now),
            Self.metricsEvent(.briefReady, id: "brief_ready", of: handoff, at: now),
        ]
        // The human's screen is the critical path, so the brief goes to the desks now, while the transaction
        // commits: the router's reservation is already durable, and the call's lock (held until the commit) makes
        // an AckBrief or Accept that comes back first wait for it. The AI's reply still waits for the commit.
        self.handoffCalls.withLock { $0[handoffID] = state.call.callID }
        if routed.outcome == .routed {
            metrics.append(Self.metricsEvent(.routed, id: "routed-\(routed.attempt)", of: handoff, at: now))
            if self.briefs.offer(handoff.plan.brief) > 0 {
                metrics.append(Self.metricsEvent(.briefDelivered, id: "brief_delivered", of: handoff, at: now))
            }
        }
        var reply = Baton_Context_V1_RecordReply()
        reply.outcome = .handoff
        reply.plan = handoff.plan
        state.handoffs.append(handoff)
        if !decision.gateID.isEmpty {
            state.firedGates.append(decision.gateID)
        }
        let snapshot = state
        do {
            try await self.store.write { [reply, handoff, metrics] db in
                try ContextStore.insertEvent(trigger, seq: snapshot.eventCount, reply: reply, recordedAt: now, in: db)
                try ContextStore.saveHandoff(handoff, seq: snapshot.handoffs.count, in: db)
                try ContextStore.enqueue(metrics, in: db)
            }
        } catch {
            // Nothing was applied: take the brief back. A retry of the event routes the same handoff id, and the
            // router answers it with the reservation it holds.
            self.handoffCalls.withLock { _ = $0.removeValue(forKey: handoffID) }
            if routed.outcome == .routed {
                self.briefs.withdraw(handoff.plan.brief, reason: .notStored)
            }
            throw error
        }
        entry.commit(snapshot, events: [trigger.eventID])
        self.outboxAdded.ring()
        return reply
    }

    /// An event while a handoff is in progress: no gate is evaluated (a human is on the way); a caller turn that
    /// restates a fact of the brief is a repeat; a new fact makes a new revision of the brief.
    private func recordDuringHandoff(
        _ event: Baton_Context_V1_Event,
        active: Baton_Context_V1_Handoff,
        state: CallState,
        entry: Entry,
        now: Int64
    ) async throws -> Baton_Context_V1_RecordReply {
        var state = state
        var handoff = active
        var reply = Baton_Context_V1_RecordReply()
        reply.outcome = .continue
        var metrics: [Baton_Metrics_V1_Event] = []
        if case .callerTurn(let turn) = event.kind {
            let facts = handoff.plan.brief.facts.map { (slot: $0.slot, value: $0.value) }
            let repeated = Repeats.restated(in: turn.text, facts: facts).filter { !handoff.repeatedSlots.contains($0) }
            for slot in repeated {
                handoff.repeatedSlots.append(slot)
                var metric = Self.metricsEvent(.callerRepeated, id: "caller_repeated-\(slot)", of: handoff, at: now)
                metric.repeatedSlot = slot
                metrics.append(metric)
            }
            reply.repeatedSlots = repeated
        }
        var revised: Baton_Context_V1_Brief?
        if CallState.changesBrief(event) && handoff.plan.outcome == .transfer {
            let old = handoff.plan.brief
            let trigger = old.keyTurns.first(where: \.trigger)?.eventID ?? ""
            var brief = Briefing.brief(old, of: state, trigger: trigger)
            let changed = Briefing.changes(from: old, to: brief)
            if !changed.isEmpty {
                brief.revision = old.revision + 1
                brief.changed = changed
                brief.revisedAtUnixMs = now
                handoff.plan.brief = brief
                handoff.plan.whisper = Briefing.whisper(brief)
                revised = brief
            }
        }
        let handoffChanged = handoff != active
        state.handoffs[state.handoffs.count - 1] = handoff
        let snapshot = state
        try await self.store.write { [reply, handoff, metrics] db in
            try ContextStore.insertEvent(event, seq: snapshot.eventCount, reply: reply, recordedAt: now, in: db)
            if handoffChanged {
                try ContextStore.saveHandoff(handoff, seq: snapshot.handoffs.count, in: db)
            }
            try ContextStore.enqueue(metrics, in: db)
        }
        entry.commit(snapshot, events: [event.eventID])
        if !metrics.isEmpty {
            self.outboxAdded.ring()
        }
        if let revised {
            self.briefs.offer(revised)
        }
        return reply
    }

    // MARK: - Handoffs

    /// Runs `change` on the handoff `id` under its call's lock and stores what it returns: the changed handoff,
    /// the outbox events, and what to publish once stored.
    private func changeHandoff(
        _ id: String,
        _ change: @Sendable (inout Baton_Context_V1_Handoff, inout CallState) async throws -> HandoffChange
    ) async throws -> Baton_Context_V1_Handoff {
        try Self.validateID(id, "handoff_id")
        guard let callID = self.handoffCalls.withLock({ $0[id] }), let entry = self.calls.withLock({ $0[callID] })
        else {
            if let stored = try await self.store.pool.read({ try ContextStore.handoff(id: id, in: $0) }) {
                throw RPCError(
                    code: .failedPrecondition,
                    message: "handoff '\(id)' has ended with its call '\(stored.callID)'"
                )
            }
            throw RPCError.notFound("no handoff '\(id)'")
        }
        return try await entry.lock.run {
            var state = entry.current
            guard let index = state.handoffs.firstIndex(where: { $0.handoffID == id }) else {
                throw RPCError.notFound("no handoff '\(id)'")
            }
            var handoff = state.handoffs[index]
            let before = handoff
            let result = try await change(&handoff, &state)
            state.handoffs[index] = handoff
            let snapshot = state
            if handoff != before || !result.metrics.isEmpty || !result.events.isEmpty {
                let seq = index + 1
                let firstSeq = entry.current.eventCount
                try await self.store.write { [handoff] db in
                    var eventSeq = firstSeq
                    try ContextStore.saveHandoff(handoff, seq: seq, in: db)
                    try ContextStore.enqueue(result.metrics, in: db)
                    for event in result.events {
                        eventSeq += 1
                        try ContextStore.insertEvent(
                            event,
                            seq: eventSeq,
                            reply: Baton_Context_V1_RecordReply(),
                            recordedAt: event.atUnixMs,
                            in: db
                        )
                    }
                }
            }
            entry.commit(snapshot, events: result.events.map(\.eventID))
            if !result.metrics.isEmpty {
                self.outboxAdded.ring()
            }
            for (brief, reason) in result.withdraw {
                self.briefs.withdraw(brief, reason: reason)
            }
            for brief in result.offer {
                self.briefs.offer(brief)
            }
            if let kind = result.update {
                var update = Baton_Context_V1_CallUpdate()
                update.kind = kind
                update.callID = handoff.callID
                update.handoff = handoff
                update.atUnixMs = Self.now()
                self.callUpdates.publish(update)
            }
            if result.closeCall {
                _ = try await self.close(entry, at: Self.now(), reason: .callerHungUp)
                return entry.current.handoffs[index]
            }
            return handoff
        }
    }

    struct HandoffChange: Sendable {
        var metrics: [Baton_Metrics_V1_Event] = []
        var events: [Baton_Context_V1_Event] = []
        var withdraw: [(Baton_Context_V1_Brief, Baton_Context_V1_BriefUpdate.Reason)] = []
        var offer: [Baton_Context_V1_Brief] = []
        var update: Baton_Context_V1_CallUpdate.Kind?
        var closeCall = false
    }

    package func ackBrief(_ request: Baton_Context_V1_AckBriefRequest) async throws -> Baton_Context_V1_Handoff {
        try Self.validateID(request.agentID, "agent_id")
        let now = Self.now()
        let at = try Self.time(request.displayedAtUnixMs, "displayed_at_unix_ms", now: now)
        return try await self.changeHandoff(request.handoffID) { handoff, _ in
            let current = handoff.plan.brief.revision
            guard request.revision >= 1 && request.revision <= current else {
                throw RPCError.invalidArgument(
                    "revision \(request.revision) was never sent; expected 1 to \(current) for '\(handoff.handoffID)'"
                )
            }
            var change = HandoffChange()
            if handoff.displayedAtUnixMs == 0 {
                handoff.displayedAtUnixMs = at
                var metric = Self.metricsEvent(.briefDisplayed, id: "brief_displayed", of: handoff, at: at)
                metric.destination = handoff.plan.destinationID
                change.metrics.append(metric)
                change.update = .briefDisplayed
            }
            handoff.displayedRevision = max(handoff.displayedRevision, request.revision)
            return change
        }
    }

    package func accept(_ request: Baton_Context_V1_AcceptRequest) async throws -> Baton_Context_V1_Handoff {
        try await self.changeHandoff(request.handoffID) { handoff, _ in
            try Self.requireOffered(handoff, to: "accept")
            if handoff.state == .offered {
                try await self.acceptReservation(handoff)
                handoff.state = .accepted
            }
            return HandoffChange()
        }
    }

    package func decline(_ request: Baton_Context_V1_DeclineRequest) async throws -> Baton_Context_V1_Handoff {
        let reason = Redactor.redact(request.reason)
        try Self.validateID(request.destinationID, "destination_id")
        return try await self.changeHandoff(request.handoffID) { handoff, _ in
            if try Self.hasLeft(handoff, request.destinationID) {
                return HandoffChange()
            }
            try Self.requireOffered(handoff, to: "decline")
            guard handoff.state == .offered || handoff.state == .accepted else {
                throw RPCError(
                    code: .failedPrecondition,
                    message: "handoff '\(handoff.handoffID)' is \(handoff.state); only a handoff not yet connected "
                        + "can be declined"
                )
            }
            return try await self.reroute(&handoff, reason: reason.isEmpty ? "declined" : "declined: \(reason)")
        }
    }

    /// Routes the handoff again without its current destination (the router's Decline).
    private func reroute(_ handoff: inout Baton_Context_V1_Handoff, reason: String) async throws -> HandoffChange {
        let reservation = handoff.reservationID
        let routed = try await self.dependency("the router") { options in
            try await self.router.decline(
                .with {
                    $0.reservationID = reservation
                    $0.reason = reason
                },
                options: options
            )
        }
        let now = Self.now()
        var change = HandoffChange()
        let old = handoff.plan.brief
        change.withdraw.append((old, .rerouted))
        handoff.declinedBy.append(old.destinationID)
        var brief = old
        brief.destinationID = routed.destinationID
        brief.predictedLiveHumanMs = routed.predictedLiveHumanMs
        brief.revision = old.revision + 1
        brief.changed = ["destination"]
        brief.revisedAtUnixMs = now
        handoff.plan = Self.plan(routed, brief: brief)
        handoff.reservationID = routed.reservationID
        handoff.displayedAtUnixMs = 0
        handoff.displayedRevision = 0
        change.update = .planChanged
        if routed.outcome == .routed {
            handoff.state = .offered
            change.offer.append(brief)
            change.metrics.append(Self.metricsEvent(.routed, id: "routed-\(routed.attempt)", of: handoff, at: now))
        } else {
            handoff.state = .noDestination
        }
        return change
    }

    package func reportTransfer(
        _ request: Baton_Context_V1_ReportTransferRequest
    ) async throws -> Baton_Context_V1_Handoff {
        let now = Self.now()
        let at = try Self.time(request.atUnixMs, "at_unix_ms", now: now)
        if request.kind == .unspecified
            || Baton_Context_V1_ReportTransferRequest.Kind.allCases.contains(request.kind) == false
        {
            throw RPCError.invalidArgument(
                "kind is \(request.kind); expected KIND_TRANSFER_STARTED, KIND_HUMAN_CONNECTED, KIND_HUMAN_GREETED, "
                    + "KIND_TRANSFER_FAILED or KIND_CALLER_HUNG_UP"
            )
        }
        if request.kind == .transferFailed {
            try Self.validateID(request.destinationID, "destination_id")
        }
        return try await self.changeHandoff(request.handoffID) { handoff, _ in
            if request.kind == .transferFailed, try Self.hasLeft(handoff, request.destinationID) {
                return HandoffChange()
            }
            try Self.requireOffered(handoff, to: "report a transfer of")
            var change = HandoffChange()
            switch request.kind {
            case .transferStarted:
                change.metrics.append(Self.metricsEvent(.transferStarted, id: "transfer_started", of: handoff, at: at))
            case .humanConnected:
                if handoff.state == .offered {
                    try await self.acceptReservation(handoff)
                }
                if handoff.state == .offered || handoff.state == .accepted {
                    handoff.state = .connected
                    handoff.connectedAtUnixMs = at
                    change.update = .humanConnected
                }
                change.metrics.append(Self.metricsEvent(.humanConnected, id: "human_connected", of: handoff, at: at))
            case .humanGreeted:
                if handoff.state == .offered {
                    try await self.acceptReservation(handoff)
                }
                if handoff.state != .greeted {
                    handoff.state = .greeted
                    handoff.greetedAtUnixMs = at
                    change.update = .humanGreeted
                }
                change.metrics.append(Self.metricsEvent(.humanGreeted, id: "human_greeted", of: handoff, at: at))
            case .transferFailed:
                let failed = Self.metricsEvent(
                    .transferFailed,
                    id: "transfer_failed-\(handoff.plan.attempt)",
                    of: handoff,
                    at: at
                )
                let sip = request.sipStatus == 0 ? "" : " (SIP \(request.sipStatus))"
                if handoff.plan.attempt < Self.maxAttempts {
                    change = try await self.reroute(&handoff, reason: "transfer failed\(sip)")
                } else {
                    try await self.releaseReservation(of: handoff, outcome: .failed)
                    change.withdraw.append((handoff.plan.brief, .rerouted))
                    handoff.declinedBy.append(handoff.plan.destinationID)
                    handoff.state = .noDestination
                    handoff.reservationID = ""
                    handoff.plan.outcome = .noDestination
                    handoff.plan.callbackOffered = false
                    handoff.plan.callerText = Briefing.callerText(handoff.plan)
                    change.update = .planChanged
                }
                change.metrics.insert(failed, at: 0)
            case .callerHungUp:
                change.closeCall = true
            case .unspecified, .UNRECOGNIZED:
                break
            }
            return change
        }
    }

    package func reportRepeat(_ request: Baton_Context_V1_ReportRepeatRequest) async throws -> Baton_Context_V1_Handoff
    {
        try Self.validateID(request.slot, "slot")
        return try await self.changeHandoff(request.handoffID) { handoff, _ in
            var change = HandoffChange()
            if !handoff.repeatedSlots.contains(request.slot) {
                handoff.repeatedSlots.append(request.slot)
                var metric = Self.metricsEvent(
                    .callerRepeated,
                    id: "caller_repeated-\(request.slot)",
                    of: handoff,
                    at: Self.now()
                )
                metric.repeatedSlot = request.slot
                change.metrics.append(metric)
            }
            return change
        }
    }

    package func handBack(_ request: Baton_Context_V1_HandBackRequest) async throws -> Baton_Context_V1_Handoff {
        guard request.outcome != .unspecified, request.outcome.rawValue <= 3 else {
            throw RPCError.invalidArgument(
                "outcome is \(request.outcome); expected OUTCOME_DONE, OUTCOME_NOT_DONE or OUTCOME_NEEDS_FOLLOW_UP"
            )
        }
        for (name, value) in request.slots {
            try Self.validateID(name, "slots key")
            try Self.validateText(value, "slots['\(name)']")
        }
        try Self.validateText(request.notes, "notes", required: false)
        let now = Self.now()
        return try await self.changeHandoff(request.handoffID) { handoff, state in
            if handoff.state == .handedBack {
                return HandoffChange()
            }
            guard CallState.inProgress(handoff.state) else {
                throw RPCError(
                    code: .failedPrecondition,
                    message: "handoff '\(handoff.handoffID)' is \(handoff.state); only a handoff in progress can be "
                        + "handed back"
                )
            }
            try await self.releaseReservation(of: handoff, outcome: .connected)
            var change = HandoffChange()
            for (name, value) in request.slots.sorted(by: { $0.key < $1.key }) {
                var event = Baton_Context_V1_Event()
                event.eventID = "handback-\(handoff.handoffID)-\(name)"
                event.callID = handoff.callID
                event.atUnixMs = now
                event.slotCaptured = .with {
                    $0.name = name
                    $0.value = Redactor.redact(value)
                    $0.confirmed = true
                }
                state.apply(event)
                change.events.append(event)
            }
            change.withdraw.append((handoff.plan.brief, .handedBack))
            handoff.state = .handedBack
            handoff.reservationID = ""
            handoff.handBackOutcome = request.outcome
            handoff.handBackNotes = Redactor.redact(request.notes)
            change.update = .handedBack
            return change
        }
    }

    /// Whether a Decline or a failed transfer about `destination` is a repeat: the handoff has already left it.
    /// A destination the handoff was never at is refused.
    private static func hasLeft(_ handoff: Baton_Context_V1_Handoff, _ destination: String) throws -> Bool {
        if handoff.declinedBy.contains(destination) {
            return true
        }
        guard destination == handoff.plan.destinationID else {
            throw RPCError.invalidArgument(
                "destination_id '\(destination)' never had handoff '\(handoff.handoffID)'; it is at "
                    + "'\(handoff.plan.destinationID)'"
            )
        }
        return false
    }

    private static func requireOffered(_ handoff: Baton_Context_V1_Handoff, to what: String) throws {
        guard CallState.inProgress(handoff.state) else {
            throw RPCError(
                code: .failedPrecondition,
                message: "cannot \(what) handoff '\(handoff.handoffID)': it is \(handoff.state)"
            )
        }
    }

    private func acceptReservation(_ handoff: Baton_Context_V1_Handoff) async throws {
        let reservation = handoff.reservationID
        _ = try await self.dependency("the router") { options in
            try await self.router.accept(.with { $0.reservationID = reservation }, options: options)
        }
    }

    /// Releases the handoff's reservation; one that the router has already ended (expired) is fine.
    private func releaseReservation(
        of handoff: Baton_Context_V1_Handoff,
        outcome: Baton_Routing_V1_ReleaseOutcome
    ) async throws {
        guard !handoff.reservationID.isEmpty else {
            return
        }
        let reservation = handoff.reservationID
        let greetedAt = handoff.greetedAtUnixMs
        do {
            _ = try await self.dependency("the router") { options in
                try await self.router.release(
                    .with {
                        $0.reservationID = reservation
                        $0.outcome = outcome
                        $0.greetedAtUnixMs = outcome == .connected ? greetedAt : 0
                    },
                    options: options
                )
            }
        } catch let error as RPCError where error.code == .failedPrecondition || error.code == .notFound {
            self.logger.info(
                "context-assembler: reservation already ended",
                metadata: ["baton.reservation": "\(reservation)", "baton.error": "\(error.message)"]
            )
        }
    }

    // MARK: - Reading

    package func getBrief(_ request: Baton_Context_V1_GetBriefRequest) throws -> Baton_Context_V1_Brief {
        if !request.handoffID.isEmpty {
            guard let handoff = try self.store.pool.read({ try ContextStore.handoff(id: request.handoffID, in: $0) })
            else {
                throw RPCError.notFound("no handoff '\(request.handoffID)'")
            }
            return handoff.plan.brief
        }
        guard !request.token.isEmpty else {
            throw RPCError.invalidArgument("handoff_id and token are both empty; expected one of them")
        }
        guard let handoff = try self.store.pool.read({ try ContextStore.handoff(token: request.token, in: $0) }) else {
            throw RPCError.notFound("no brief has that token")
        }
        return handoff.plan.brief
    }

    /// The open briefs for `destination` and every later update; an OPEN brief not yet delivered counts as
    /// delivered now.
    package func watchBriefs(_ destination: String) async throws -> AsyncStream<Baton_Context_V1_BriefUpdate> {
        try Self.validateID(destination, "destination_id")
        return self.briefs.watch(destination)
    }

    /// Records brief_delivered for a brief written to a desk (the collector keeps the first).
    package func delivered(_ brief: Baton_Context_V1_Brief) async {
        let now = Self.now()
        guard let callID = self.handoffCalls.withLock({ $0[brief.handoffID] }),
            let entry = self.calls.withLock({ $0[callID] })
        else {
            return
        }
        let find = { @Sendable (state: CallState) in state.handoffs.first { $0.handoffID == brief.handoffID } }
        // A new brief is offered before its handoff is stored, and only then is the handoff not found here: the
        // call's lock, held until that write ends, is then worth waiting for.
        var found = find(entry.current)
        if found == nil {
            found = try? await entry.lock.run { find(entry.current) }
        }
        guard let handoff = found else {
            return
        }
        let event = Self.metricsEvent(.briefDelivered, id: "brief_delivered", of: handoff, at: now)
        do {
            try await self.store.write { try ContextStore.enqueue([event], in: $0) }
            self.outboxAdded.ring()
        } catch {
            self.logger.error(
                "context-assembler: storing brief_delivered failed",
                metadata: ["baton.error": "\(error)"]
            )
        }
    }

    package func watchCall(_ callID: String) throws -> AsyncStream<Baton_Context_V1_CallUpdate> {
        try Self.validateID(callID, "call_id")
        let entry = self.calls.withLock { $0[callID] }
        if entry == nil {
            guard try self.storedCall(callID) != nil else {
                throw RPCError.notFound("no call '\(callID)'")
            }
        }
        return self.callUpdates.watch(callID) {
            var update = Baton_Context_V1_CallUpdate()
            update.callID = callID
            update.atUnixMs = Self.now()
            guard let state = entry?.current, state.isOpen else {
                update.kind = .callClosed
                return update
            }
            guard let last = state.handoffs.last else {
                return nil
            }
            update.kind = .current
            update.handoff = last
            return update
        }
    }

    // MARK: - Outbox

    /// Sends the outbox to the collector until it is empty; returns how many events were acknowledged.
    package func flushOutbox(
        to metrics: Baton_Metrics_V1_MetricsCollector.Client,
        timeout: Duration = .seconds(5)
    ) async throws -> Int {
        var sent = 0
        while true {
            let rows = try await self.store.pool.read { try ContextStore.outbox(limit: 500, in: $0) }
            guard let last = rows.last else {
                return sent
            }
            do {
                _ = try await metrics.recordBatch(
                    .with { $0.events = rows.map(\.event) },
                    options: CallOptions(timeout: timeout)
                )
            } catch let error as RPCError where error.code == .invalidArgument {
                // One invalid event must not hold back the rest: send them one by one and drop those refused.
                for row in rows {
                    do {
                        _ = try await metrics.record(
                            .with { $0.event = row.event },
                            options: CallOptions(timeout: timeout)
                        )
                    } catch let refused as RPCError where refused.code == .invalidArgument {
                        self.logger.error(
                            "context-assembler: the metrics collector refused a timeline event; dropped",
                            metadata: ["baton.event": "\(row.event.eventID)", "baton.error": "\(refused.message)"]
                        )
                    }
                }
            }
            try await self.store.write { try ContextStore.deleteOutbox(through: last.id, in: $0) }
            sent += rows.count
        }
    }

    package var outboxCount: Int {
        get throws {
            try self.store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
        }
    }

    // MARK: - Helpers

    /// Calls a dependency, retrying while it is unavailable within ``dependencyBudget``; then UNAVAILABLE, with
    /// nothing applied. Other errors pass through.
    private func dependency<T: Sendable>(
        _ name: String,
        _ body: (CallOptions) async throws -> T
    ) async throws -> T {
        let clock = ContinuousClock()
        let end = clock.now + self.dependencyBudget
        var last: RPCError?
        while clock.now < end {
            do {
                return try await body(CallOptions(timeout: min(.seconds(2), end - clock.now), waitForReady: true))
            } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                last = error
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw RPCError.unavailable(
            "\(name) did not answer within \(self.dependencyBudget) (\(last?.message ?? "no answer")); "
                + "nothing was applied: retry the same request"
        )
    }

    static func plan(_ routed: Baton_Routing_V1_RouteReply, brief: Baton_Context_V1_Brief) -> Baton_Context_V1_Plan {
        var plan = Baton_Context_V1_Plan()
        plan.outcome = routed.outcome == .routed ? .transfer : .noDestination
        plan.handoffID = brief.handoffID
        plan.attempt = routed.attempt
        plan.gateID = brief.gateID
        plan.category = brief.category
        plan.undesigned = brief.undesigned
        plan.destinationID = routed.destinationID
        plan.destinationKind = Baton_Context_V1_DestinationKind(rawValue: routed.kind.rawValue) ?? .unspecified
        plan.transferAddress = routed.transferAddress
        if routed.outcome == .routed {
            plan.sipHeaders = ["X-Baton-Handoff": brief.token]
        }
        plan.predictedLiveHumanMs = routed.predictedLiveHumanMs
        plan.brief = brief
        plan.nextOpenAtUnixMs = routed.nextOpenAtUnixMs
        plan.nextOpenDestinationID = routed.nextOpenDestinationID
        plan.callbackOffered = routed.outcome != .routed && routed.nextOpenAtUnixMs > 0
        plan.callerText = Briefing.callerText(plan)
        plan.whisper = Briefing.whisper(brief)
        return plan
    }

    static func metricsEvent(
        _ kind: Baton_Metrics_V1_EventKind,
        id: String,
        of handoff: Baton_Context_V1_Handoff,
        at: Int64
    ) -> Baton_Metrics_V1_Event {
        var event = Baton_Metrics_V1_Event()
        event.eventID = id
        event.handoffID = handoff.handoffID
        event.callID = handoff.callID
        event.kind = kind
        event.atUnixMs = at
        event.workflow = handoff.plan.brief.workflowID
        event.gate = handoff.plan.gateID
        event.category = handoff.plan.category
        event.origin = handoff.plan.undesigned ? .undesigned : .designed
        if !handoff.plan.destinationID.isEmpty {
            event.destination = handoff.plan.destinationID
            event.destinationKind = handoff.plan.destinationKind == .partner ? "partner" : "in_house"
        }
        return event
    }

    static func priorityName(_ priority: Baton_Gates_V1_Priority) -> String {
        switch priority {
        case .low: "low"
        case .high: "high"
        case .urgent: "urgent"
        default: "normal"
        }
    }

    /// 128 random bits, as 32 hex digits.
    static func token() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    static func validateID(_ value: String, _ field: String) throws(RPCError) {
        guard !value.isEmpty else {
            throw RPCError.invalidArgument("\(field) is empty; expected an id")
        }
        guard value.utf8.count <= Self.maxID else {
            throw RPCError.invalidArgument("\(field) is \(value.utf8.count) bytes; expected at most \(Self.maxID)")
        }
    }

    static func validateText(_ value: String, _ field: String, required: Bool = true) throws(RPCError) {
        if required && value.isEmpty {
            throw RPCError.invalidArgument("\(field) is empty; expected text")
        }
        guard value.count <= Self.maxText else {
            throw RPCError.invalidArgument(
                "\(field) is \(value.count) characters; expected at most \(Self.maxText)"
            )
        }
    }

    /// `value`, or `now` when 0; INVALID_ARGUMENT when it is more than an hour ahead or negative.
    static func time(_ value: Int64, _ field: String, now: Int64) throws(RPCError) -> Int64 {
        guard value != 0 else {
            return now
        }
        guard value > 0 else {
            throw RPCError.invalidArgument("\(field) is \(value); expected Unix milliseconds, or 0 for now")
        }
        guard value <= now + Self.maxFuture else {
            throw RPCError.invalidArgument(
                "\(field) is \(value - now) ms ahead of the assembler's clock; expected at most an hour ahead"
            )
        }
        return value
    }

    /// The event with its time set and every field checked, naming the first one that is wrong.
    static func validated(_ event: Baton_Context_V1_Event, now: Int64) throws(RPCError) -> Baton_Context_V1_Event {
        var event = event
        try Self.validateID(event.eventID, "event.event_id")
        try Self.validateID(event.callID, "event.call_id")
        event.atUnixMs = try Self.time(event.atUnixMs, "event.at_unix_ms", now: now)
        switch event.kind {
        case nil:
            throw RPCError.invalidArgument(
                "event has no kind; expected one of caller_turn, ai_turn, slot_captured, intent_detected, "
                    + "step_reached, identity_verified, proposed_next_step, ai_summary, ai_escalation"
            )
        case .callerTurn(let turn): try Self.validateText(turn.text, "event.caller_turn.text")
        case .aiTurn(let turn): try Self.validateText(turn.text, "event.ai_turn.text")
        case .slotCaptured(let slot):
            try Self.validateID(slot.name, "event.slot_captured.name")
            try Self.validateText(slot.value, "event.slot_captured.value")
        case .intentDetected(let intent): try Self.validateID(intent.intent, "event.intent_detected.intent")
        case .stepReached(let step): try Self.validateID(step.step, "event.step_reached.step")
        case .identityVerified(let identity): try Self.validateID(identity.method, "event.identity_verified.method")
        case .proposedNextStep(let text): try Self.validateText(text.text, "event.proposed_next_step.text")
        case .aiSummary(let text): try Self.validateText(text.text, "event.ai_summary.text")
        case .aiEscalation(let escalation):
            try Self.validateText(escalation.reason, "event.ai_escalation.reason", required: false)
        }
        return event
    }

    /// The event with every text passed through the ``Redactor``.
    static func redacted(_ event: Baton_Context_V1_Event) -> Baton_Context_V1_Event {
        var event = event
        switch event.kind {
        case .callerTurn(var turn):
            turn.text = Redactor.redact(turn.text)
            event.callerTurn = turn
        case .aiTurn(var turn):
            turn.text = Redactor.redact(turn.text)
            event.aiTurn = turn
        case .slotCaptured(var slot):
            slot.value = Redactor.redact(slot.value)
            event.slotCaptured = slot
        case .proposedNextStep(var text):
            text.text = Redactor.redact(text.text)
            event.proposedNextStep = text
        case .aiSummary(var text):
            text.text = Redactor.redact(text.text)
            event.aiSummary = text
        case .aiEscalation(var escalation):
            escalation.reason = Redactor.redact(escalation.reason)
            event.aiEscalation = escalation
        case .intentDetected, .stepReached, .identityVerified, nil:
            break
        }
        return event
    }
}
