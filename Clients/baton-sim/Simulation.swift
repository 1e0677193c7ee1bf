import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import SwiftProtobuf
import Synchronization

/// How the simulated AI works: with Baton's gates and briefs, or the way most AI agents do (failover).
enum Mode: String, Sendable, CaseIterable {
    /// Gates decide; the human gets the brief and reads it before hello.
    case handoff
    /// No gates: the AI escalates only when confused or when the caller insists; the transfer is blind, so the
    /// human asks for everything they need.
    case failover
}

/// What one simulated call ended as, from the simulator's side (Baton's own figures come from its collector).
struct CallOutcome: Sendable {
    enum End: String, Sendable {
        case resolvedByAI = "resolved by the AI"
        case human = "reached a human"
        case callback = "callback offered"
        case abandoned = "hung up on hold"
        case failed = "failed"
    }

    var callID: String
    var end: End
    var handoffID = ""
    var designed = false
    /// Where the human who answered was, and its kind.
    var destination = ""
    var destinationKind = ""
    /// The human's handling time at the destination's cost per minute.
    var cost = 0.0
    /// The router's prediction, in ms.
    var predictedMs: UInt32 = 0
    /// The facts the caller had to say again: the simulator's own ground truth.
    var repeated: [String] = []
    /// From sending the Record that fired the gate to the brief arriving on the destination's desk stream (ms):
    /// Baton's own part of time-to-context-ready, never scaled.
    var platformMs: Double?
    /// From the plan to the human's hello, on the call's clock (full scale): the simulator's own view, for the
    /// progress line; the report takes Baton's.
    var liveMs: Double?
    /// Transfers the telephony could not complete.
    var failedTransfers = 0
    var failure = ""
    /// The ids of the events the context-assembler acknowledged (Record answered): each must be in the call.
    var acknowledged: [String] = []
    /// The timeline events the acknowledged calls must have given the handoff in the metrics collector.
    var expected: [Baton_Metrics_V1_EventKind] = []
}

/// What the run has done so far, for the progress line.
struct Progress: Sendable {
    var done = 0
    var inHandoff = 0
    /// Each finished handoff's time to the human's hello (ms, full scale), as the simulator saw it.
    var live: [Double] = []

    /// The p90 of `live` so far.
    var liveP90: Double? { Report.percentile(self.live, 90) }
}

/// The humans at one destination: how many are free, fed to the router as availability.
final class AgentPool: Sendable {
    let destination: String
    let size: Int
    private let free: Mutex<Int>

    init(destination: String, size: Int) {
        self.destination = destination
        self.size = size
        self.free = Mutex(size)
    }

    /// Waits for a free human, for at most `patience`; false when the caller gave up first.
    func take(within patience: Duration) async -> Bool {
        let end = ContinuousClock.now + patience
        while !self.claim() {
            guard ContinuousClock.now < end else {
                return false
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Takes a free human, if there is one.
    private func claim() -> Bool {
        self.free.withLock { free in
            guard free > 0 else {
                return false
            }
            free -= 1
            return true
        }
    }

    func give() {
        self.free.withLock { $0 = min(self.size, $0 + 1) }
    }

    var busy: Int { self.size - self.free.withLock { $0 } }
}

/// The voice AI's lines: at most `count` calls at once; a call beyond them waits for one to end.
final class Lines: Sendable {
    private let state: Mutex<(free: Int, waiting: [CheckedContinuation<Void, Never>])>

    init(_ count: Int) {
        self.state = Mutex((count, []))
    }

    func take() async {
        await withCheckedContinuation { continuation in
            let now = self.state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiting.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if now {
                continuation.resume()
            }
        }
    }

    func give() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// When the calls arrive: a Poisson process whose rate follows the scenario's phases (the last one holds until
/// every call has come), drawn from the scenario's seed so that both modes see the same arrivals. With no phases,
/// no gaps: the calls come as lines free up.
struct Arrivals {
    let phases: [ArrivalPhase]
    private var random: SplitMix64
    /// Simulated seconds since the first arrival.
    private var elapsed = 0.0

    init(_ phases: [ArrivalPhase], seed: UInt64) {
        self.phases = phases
        self.random = SplitMix64(seed: seed ^ 0xA11_1CA7E)
    }

    /// The simulated seconds until the next call arrives; nil without phases.
    mutating func next() -> Double? {
        guard !self.phases.isEmpty else {
            return nil
        }
        var start = 0.0
        var rate = self.phases[self.phases.count - 1].perMinute / 60
        for phase in self.phases {
            if self.elapsed < start + phase.minutes * 60 {
                rate = phase.perMinute / 60
                break
            }
            start += phase.minutes * 60
        }
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &self.random)
        let gap = -log(uniform) / max(rate, 1e-6)
        self.elapsed += gap
        return gap
    }
}

/// The briefs each destination's desk has received, by handoff id, for the humans waiting for theirs.
final class DeskInbox: Sendable {
    private let briefs = Mutex<[String: (brief: Baton_Context_V1_Brief, at: ContinuousClock.Instant)]>([:])

    func received(_ brief: Baton_Context_V1_Brief) {
        let now = ContinuousClock.now
        self.briefs.withLock { briefs in
            if briefs[brief.handoffID] == nil {
                briefs[brief.handoffID] = (brief, now)
            }
        }
    }

    /// When the first brief of `handoffID` arrived, if it has.
    func arrival(_ handoffID: String) -> ContinuousClock.Instant? {
        self.briefs.withLock { $0[handoffID]?.at }
    }

    /// The brief of `handoffID` once it has arrived, for at most `timeout`.
    func brief(_ handoffID: String, within timeout: Duration) async -> Baton_Context_V1_Brief? {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            if let brief = self.briefs.withLock({ $0[handoffID]?.brief }) {
                return brief
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

/// One call's time. The simulated parties' delays are drawn at full scale and slept `speed` times faster; the
/// difference is added to the times the simulator reports from then on, so that Baton's timeline holds the
/// humans' times at full scale while the platform's own latency between them stays real (never scaled).
struct CallClock {
    let speed: Double
    private(set) var offsetMs: Int64 = 0

    init(speed: Double) {
        self.speed = speed
    }

    /// Now, on the call's timeline.
    var now: Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) + self.offsetMs }

    /// Lets `seconds` of simulated time pass.
    mutating func pass(_ seconds: Double) async {
        let real = seconds / self.speed
        try? await Task.sleep(for: .milliseconds(Int64(real * 1000)))
        self.offsetMs += Int64(((seconds - real) * 1000).rounded())
    }

    /// The caller waited `real` for a human, which at full scale is `speed` times longer.
    mutating func waited(_ real: Duration) {
        let ms = Simulation.milliseconds(real)
        self.offsetMs += Int64((ms * (self.speed - 1)).rounded())
    }

    /// The handoff starts now: what happened before is the AI's part, and Baton stamps the gate with its own
    /// clock, so the offset starts again from zero.
    mutating func handoffStarts() {
        self.offsetMs = 0
    }
}

/// Runs the callers, the AI, the telephony and the humans against the running processes.
final class Simulation: Sendable {
    let scenario: Scenario
    let mode: Mode
    let speed: Double
    let assembler: Baton_Context_V1_ContextAssembler.Client
    let router: Baton_Routing_V1_Router.Client
    let pools: [String: AgentPool]
    /// Each destination as the router describes it (kind, cost), read when the run starts.
    let destinations = Mutex<[String: Baton_Routing_V1_DestinationState]>([:])
    let inboxes: [String: DeskInbox]
    /// Unique per run, so that two runs against the same processes never share an id.
    let runID: String
    let progress = Mutex(Progress())
    static let deadline = CallOptions(timeout: .seconds(30), waitForReady: true)
    /// How long a call is tried again while the process it calls is unavailable (restarting).
    static let retryWindow = Duration.seconds(90)

    init(
        scenario: Scenario,
        mode: Mode,
        speed: Double,
        assembler: Baton_Context_V1_ContextAssembler.Client,
        router: Baton_Routing_V1_Router.Client,
        runID: String
    ) {
        self.scenario = scenario
        self.mode = mode
        self.speed = speed
        self.assembler = assembler
        self.router = router
        self.runID = runID
        var pools: [String: AgentPool] = [:]
        var inboxes: [String: DeskInbox] = [:]
        for (destination, size) in scenario.agents {
            pools[destination] = AgentPool(destination: destination, size: size)
            inboxes[destination] = DeskInbox()
        }
        self.pools = pools
        self.inboxes = inboxes
    }

    /// Runs every call, `concurrency` at a time; `report` is called about twice a second with the progress.
    func run(report: @escaping @Sendable (Progress) -> Void) async throws -> [CallOutcome] {
        let known = try await Self.retrying {
            try await self.router.listDestinations(.init(), options: Self.deadline).destinations
        }
        self.destinations.withLock { $0 = Dictionary(known.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) }
        let unknown = self.scenario.agents.keys.filter { id in !known.contains { $0.id == id } }.sorted()
        guard unknown.isEmpty else {
            throw SimulationError(
                "the scenario's agents name \(unknown.joined(separator: ", ")), which the router does not know; "
                    + "its destinations: \(known.map(\.id).joined(separator: ", "))"
            )
        }
        return try await withThrowingTaskGroup(of: Void.self) { desks in
            for (destination, inbox) in self.inboxes {
                desks.addTask { try await self.watch(destination, into: inbox) }
                try await self.reportAvailability(destination)
            }
            let outcomes = try await self.runCalls(report: report)
            desks.cancelAll()
            return outcomes
        }
    }

    private func runCalls(report: @escaping @Sendable (Progress) -> Void) async throws -> [CallOutcome] {
        let reporter = Task {
            while !Task.isCancelled {
                report(self.progress.withLock { $0 })
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        defer { reporter.cancel() }
        // With arrivals, calls come at their drawn times and `concurrency` is the AI's lines: an arrival beyond
        // them waits for one. Without, `concurrency` calls run at once, each ended call making room for the next.
        var arrivals = Arrivals(self.scenario.arrivals, seed: self.scenario.seed)
        let lines = Lines(self.scenario.concurrency)
        let outcomes = await withTaskGroup(of: CallOutcome.self) { group in
            var due = ContinuousClock.now
            for index in 0..<self.scenario.calls {
                if let gap = arrivals.next() {
                    due = due + .milliseconds(Int64(gap * 1000 / self.speed))
                    try? await Task.sleep(until: due)
                }
                await lines.take()
                group.addTask {
                    // Each call's draws come from its own generator, seeded from the scenario's seed and its
                    // number, so that both modes see the same callers with the same facts and the same humans.
                    let outcome = await self.call(index)
                    lines.give()
                    self.progress.withLock {
                        $0.done += 1
                        if let live = outcome.liveMs {
                            $0.live.append(live)
                        }
                    }
                    return outcome
                }
            }
            return await group.reduce(into: [CallOutcome]()) { $0.append($1) }
        }
        report(self.progress.withLock { $0 })
        return outcomes.sorted { $0.callID < $1.callID }
    }

    /// The desk of `destination`: every brief sent to it, in the inbox of its humans. Reconnects when the stream
    /// ends (an assembler restart).
    private func watch(_ destination: String, into inbox: DeskInbox) async throws {
        while !Task.isCancelled {
            do {
                let stream = try self.assembler.watchBriefs(
                    .with {
                        $0.destinationID = destination
                        $0.agentID = "sim-desk-\(destination)"
                    },
                    options: CallOptions(waitForReady: true)
                )
                for try await update in stream where update.kind == .new || update.kind == .open {
                    inbox.received(update.brief)
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Tells the router how many of `destination`'s humans are free, from the simulated humans' state.
    private func reportAvailability(_ destination: String) async throws {
        guard let pool = self.pools[destination] else {
            return
        }
        let busy = pool.busy
        _ = try await Self.retrying {
            try await self.router.updateAvailability(
                .with {
                    $0.destinationID = destination
                    $0.agentsReady = Int32(pool.size - busy)
                    $0.agentsBusy = Int32(busy)
                },
                options: Self.deadline
            )
        }
    }

    /// Calls `body` again while the process it calls is unavailable (killed, and being restarted by the
    /// supervisor), for at most ``retryWindow``: every method of the context API is idempotent (an event's id, a
    /// transfer report's kind, a decline's destination), so the retry is answered as the first call would have been.
    static func retrying<T>(_ body: () async throws -> T) async throws -> T {
        let end = ContinuousClock.now + Self.retryWindow
        var pause = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch let error as RPCError
                where [.unavailable, .deadlineExceeded].contains(error.code) && ContinuousClock.now < end
            {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    // MARK: - One call

    private func call(_ index: Int) async -> CallOutcome {
        var random = SplitMix64(seed: self.scenario.seed &* 1_000_003 &+ UInt64(index))
        let kind = self.scenario.kind(&random)
        let persona = Persona(kind: kind, index: index, &random)
        let confused = Double.random(in: 0..<1, using: &random) < self.scenario.confusedShare
        let callID = "sim-\(self.runID)-\(self.mode.rawValue)-\(index)"
        var outcome = CallOutcome(callID: callID, end: .failed)
        var clock = CallClock(speed: self.speed)
        // The events the assembler acknowledged: kept apart from `outcome`, which `handoff` changes while it
        // records.
        var acknowledged: [String] = []
        do {
            _ = try await Self.retrying {
                try await self.assembler.openCall(
                    .with {
                        $0.callID = callID
                        $0.workflowID = kind.workflow
                        $0.caller.phoneNumber = persona.phone
                        $0.caller.language = "en-IE"
                    },
                    options: Self.deadline
                )
            }
            var events = 0
            func record(_ configure: (inout Baton_Context_V1_Event) -> Void) async throws -> Baton_Context_V1_Plan? {
                events += 1
                var event = Baton_Context_V1_Event()
                event.eventID = "e\(events)"
                event.callID = callID
                configure(&event)
                let reply = try await Self.retrying {
                    try await self.assembler.record(.with { $0.event = event }, options: Self.deadline)
                }
                acknowledged.append(event.eventID)
                return reply.outcome == .handoff ? reply.plan : nil
            }
            var plan: Baton_Context_V1_Plan?
            var sent = ContinuousClock.now
            for step in Script.steps(kind, persona: persona, mode: self.mode, confused: confused) {
                await clock.pass(self.scenario.turnGap.draw(&random))
                sent = ContinuousClock.now
                if let handoff = try await record(step) {
                    plan = handoff
                    break
                }
            }
            guard let plan else {
                outcome.end = .resolvedByAI
                try await self.close(callID)
                outcome.acknowledged = acknowledged
                return outcome
            }
            clock.handoffStarts()
            outcome.handoffID = plan.handoffID
            outcome.expected.append(.gateFired)
            outcome.designed = !plan.undesigned
            outcome.predictedMs = plan.predictedLiveHumanMs
            self.progress.withLock { $0.inHandoff += 1 }
            defer { self.progress.withLock { $0.inHandoff -= 1 } }
            try await self.handoff(plan, persona: persona, kind: kind, &clock, &random, &outcome, record: record)
            outcome.platformMs = (self.inboxes[plan.destinationID]?.arrival(plan.handoffID)).map {
                Self.milliseconds($0 - sent)
            }
            try await self.close(callID)
            outcome.expected.append(.callEnded)
        } catch {
            outcome.end = .failed
            outcome.failure = "\(error)"
        }
        outcome.acknowledged = acknowledged
        return outcome
    }

    private func close(_ callID: String) async throws {
        _ = try await Self.retrying {
            try await self.assembler.closeCall(.with { $0.callID = callID }, options: Self.deadline)
        }
    }

    /// The plan is carried out: the telephony transfers, a human at the destination reads the brief (in handoff
    /// mode), answers, says hello, asks for what they still need, and hands back.
    private func handoff(
        _ plan: Baton_Context_V1_Plan,
        persona: Persona,
        kind: CallKind,
        _ clock: inout CallClock,
        _ random: inout SplitMix64,
        _ outcome: inout CallOutcome,
        record: (_ configure: (inout Baton_Context_V1_Event) -> Void) async throws -> Baton_Context_V1_Plan?
    ) async throws {
        var plan = plan
        let handoffID = plan.handoffID
        let handoffStart = clock.now
        let patience = self.scenario.patience.draw(&random)
        while true {
            // Without Baton, the telephony transfers every escalation to one queue, whoever is free there, and
            // whatever the router would have said.
            let queue = self.mode == .failover ? self.scenario.failoverQueue : nil
            guard plan.outcome == .transfer || queue != nil else {
                outcome.end = .callback
                return
            }
            try await self.report(handoffID, .transferStarted, at: clock.now, &outcome)
            let destination = queue ?? plan.destinationID
            guard let pool = self.pools[destination], let inbox = self.inboxes[destination] else {
                outcome.end = .failed
                outcome.failure = "routed to \(destination), which the scenario's agents do not list"
                return
            }
            let state = self.destinations.withLock { $0[destination] }
            outcome.destination = destination
            outcome.destinationKind = state?.kind == .partner ? "partner" : "in_house"
            if Double.random(in: 0..<1, using: &random) < self.scenario.failedTransferShare {
                // The destination's side does not answer (SIP 503) after ringing. Baton routes the handoff again
                // (up to its limit) and the AI learns where from WatchCall; without Baton, the telephony rings
                // its queue again and nobody hears of the failure.
                await clock.pass(self.scenario.ring.draw(&random))
                outcome.failedTransfers += 1
                if queue == nil {
                    try await self.report(
                        handoffID,
                        .transferFailed,
                        at: clock.now,
                        &outcome,
                        destination: destination,
                        sipStatus: 503
                    )
                    plan = try await self.nextPlan(of: outcome.callID, leaving: destination)
                }
                continue
            }
            let holding = ContinuousClock.now
            let answered = await pool.take(within: .milliseconds(Int64(patience * 1000 / self.speed)))
            clock.waited(ContinuousClock.now - holding)
            guard answered else {
                try await self.report(handoffID, .callerHungUp, at: clock.now, &outcome)
                outcome.end = .abandoned
                return
            }
            defer {
                pool.give()
                // The router hears of the free human at once; the call goes on meanwhile, as the real feed would.
                Task { try? await self.reportAvailability(destination) }
            }
            try? await self.reportAvailability(destination)
            // The desk shows the brief once it arrives (handoff mode); the human then answers the ring.
            var brief: Baton_Context_V1_Brief?
            if self.mode == .handoff {
                // The desk shows what its stream brought; a brief it has not heard of by the time the call rings
                // through is fetched with the token of the transfer's X-Baton-Handoff header.
                brief = await inbox.brief(handoffID, within: .seconds(5))
                if brief == nil, let token = plan.sipHeaders["X-Baton-Handoff"], !token.isEmpty {
                    brief = try? await Self.retrying {
                        try await self.assembler.getBrief(.with { $0.token = token }, options: Self.deadline)
                    }
                }
                if let shown = brief {
                    await clock.pass(self.scenario.render.draw(&random) / 1000)
                    let now = clock.now
                    _ = try await Self.retrying {
                        try await self.assembler.ackBrief(
                            .with {
                                $0.handoffID = handoffID
                                $0.revision = shown.revision
                                $0.agentID = "sim-\(destination)"
                                $0.displayedAtUnixMs = now
                            },
                            options: Self.deadline
                        )
                    }
                    outcome.expected.append(.briefDisplayed)
                }
            }
            if Double.random(in: 0..<1, using: &random) < self.scenario.declineShare {
                guard queue == nil else {
                    continue  // a blind queue offers the call to the next free human; Baton never hears of it
                }
                _ = try await Self.retrying {
                    try await self.assembler.decline(
                        .with {
                            $0.handoffID = handoffID
                            $0.agentID = "sim-\(destination)"
                            $0.destinationID = destination
                            $0.reason = "busy with a follow-up"
                        },
                        options: Self.deadline
                    )
                }
                // The desk hears the decline's answer; the AI learns the new plan from WatchCall, as a real one must.
                plan = try await self.nextPlan(of: outcome.callID, leaving: destination)
                continue
            }
            await clock.pass(self.scenario.ring.draw(&random))
            _ = try await self.outsideBaton {
                try await self.assembler.accept(
                    .with {
                        $0.handoffID = handoffID
                        $0.agentID = "sim-\(destination)"
                    },
                    options: Self.deadline
                )
            }
            try await self.report(handoffID, .humanConnected, at: clock.now, &outcome)
            // Reading what the brief holds takes a moment; a blind transfer has nothing to read.
            await clock.pass(Double(brief?.facts.count ?? 0) * self.scenario.readPerFact + 0.5)
            try await self.report(handoffID, .humanGreeted, at: clock.now, &outcome)
            outcome.liveMs = Double(clock.now - handoffStart)
            outcome.end = .human
            // What the human needs and the brief does not hold, they ask for; the caller says it (again, when
            // they had told the AI already).
            let known = Set((brief?.facts ?? []).map(\.slot))
            for slot in kind.needs where !known.contains(slot) {
                await clock.pass(self.scenario.askFact.draw(&random))
                let value = persona.value(slot)
                if kind.facts.contains(slot) {
                    outcome.repeated.append(slot)
                }
                let now = clock.now
                _ = try await record {
                    $0.atUnixMs = now
                    $0.callerTurn.text = "It's \(value)."
                }
            }
            let handle = self.scenario.handle.draw(&random)
            await clock.pass(handle)
            outcome.cost = handle / 60 * (state?.costPerMin ?? 0)
            _ = try await self.outsideBaton {
                try await self.assembler.handBack(
                    .with {
                        $0.handoffID = handoffID
                        $0.outcome = .done
                        $0.notes = "done by the simulated human"
                    },
                    options: Self.deadline
                )
            }
            return
        }
    }

    /// The plan after `destination` declined, as the voice AI learns it: from WatchCall, whose first update
    /// (CURRENT) already holds it when the change came before the subscription. Subscribes again when the stream
    /// breaks (an assembler restart).
    private func nextPlan(of callID: String, leaving destination: String) async throws -> Baton_Context_V1_Plan {
        let end = ContinuousClock.now + Self.retryWindow
        while ContinuousClock.now < end {
            do {
                let updates = try self.assembler.watchCall(
                    .with { $0.callID = callID },
                    options: CallOptions(waitForReady: true)
                )
                for try await update in updates {
                    if update.handoff.declinedBy.contains(destination) {
                        return update.handoff.plan
                    }
                    if update.kind == .callClosed {
                        throw SimulationError("call \(callID) closed while its AI waited for the plan after a decline")
                    }
                }
            } catch let error as RPCError where [.unavailable, .deadlineExceeded, .cancelled].contains(error.code) {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw SimulationError(
            "WatchCall never told the AI of call \(callID) where it goes after \(destination) declined"
        )
    }

    /// Reports a transfer event; one Baton acknowledged must reach the metrics collector's timeline.
    private func report(
        _ handoffID: String,
        _ kind: Baton_Context_V1_ReportTransferRequest.Kind,
        at: Int64,
        _ outcome: inout CallOutcome,
        destination: String = "",
        sipStatus: UInt32 = 0
    ) async throws {
        let acknowledged = try await self.outsideBaton {
            try await self.assembler.reportTransfer(
                .with {
                    $0.handoffID = handoffID
                    $0.kind = kind
                    $0.atUnixMs = at
                    $0.destinationID = destination
                    $0.sipStatus = sipStatus
                },
                options: Self.deadline
            )
        }
        let timeline: [Baton_Context_V1_ReportTransferRequest.Kind: Baton_Metrics_V1_EventKind] = [
            .transferStarted: .transferStarted, .humanConnected: .humanConnected, .humanGreeted: .humanGreeted,
            .transferFailed: .transferFailed,
        ]
        if acknowledged != nil, let expected = timeline[kind] {
            outcome.expected.append(expected)
        }
    }

    /// In failover mode the telephony transfers to its queue even where Baton's router found no destination;
    /// Baton then refuses to hear of that transfer (FAILED_PRECONDITION), and the call goes on without it: such a
    /// handoff stays one with no destination in Baton's figures.
    /// Answers nil where Baton refused. Retries while the process is unavailable, as every call does.
    private func outsideBaton<T>(_ body: () async throws -> T) async throws -> T? {
        do {
            return try await Self.retrying(body)
        } catch let error as RPCError where error.code == .failedPrecondition && self.mode == .failover {
            return nil
        }
    }
}

/// A caller: their facts, drawn from the seed.
struct Persona: Sendable {
    let name: String
    let phone: String
    let values: [String: String]

    static let names = [
        "Aoife Byrne", "Liam Walsh", "Siobhan Kelly", "Tomás Ryan", "Niamh Doyle", "Cian Murphy", "Orla Quinn",
        "Darragh Nolan",
    ]
    static let relatives = ["mother", "father", "husband", "wife", "brother", "sister"]
    static let reasons = ["moving abroad", "too expensive", "switching provider", "no longer needed"]

    init(kind: CallKind, index: Int, _ random: inout SplitMix64) {
        self.name = Self.names[Int.random(in: 0..<Self.names.count, using: &random)]
        self.phone = "+3538\(Int.random(in: 10_000_000...99_999_999, using: &random))"
        var values: [String: String] = [:]
        for slot in Set(kind.facts + kind.needs).sorted() {
            switch slot {
            case "identity.name", "caller.name": values[slot] = self.name
            case "account.id": values[slot] = "AC\(Int.random(in: 1_000_000...9_999_999, using: &random))"
            case "card.last4": values[slot] = String(format: "%04d", Int.random(in: 0...9999, using: &random))
            case "refund_amount": values[slot] = String(Int(kind.amount.draw(&random)))
            case "cancel_reason": values[slot] = Self.reasons[Int.random(in: 0..<Self.reasons.count, using: &random)]
            case "relationship": values[slot] = Self.relatives[Int.random(in: 0..<Self.relatives.count, using: &random)]
            case "deceased.name": values[slot] = Self.names[Int.random(in: 0..<Self.names.count, using: &random)]
            default: values[slot] = "\(slot.replacingOccurrences(of: ".", with: " ")) \(index)"
            }
        }
        self.values = values
    }

    func value(_ slot: String) -> String {
        self.values[slot] ?? slot
    }
}

/// The AI's script for one call: what it sends the context-assembler, in order.
enum Script {
    static func steps(
        _ kind: CallKind,
        persona: Persona,
        mode: Mode,
        confused: Bool
    ) -> [(inout Baton_Context_V1_Event) -> Void] {
        var steps: [(inout Baton_Context_V1_Event) -> Void] = []
        steps.append { $0.stepReached.step = "greet" }
        steps.append { $0.aiTurn.text = "Hello, you're through to the assistant. How can I help?" }
        for slot in kind.facts {
            let value = persona.value(slot)
            if slot == "account.id", !kind.verified.isEmpty {
                steps.append { $0.stepReached.step = "verify_identity" }
            }
            steps.append { $0.aiTurn.text = "Could you tell me your \(slot.replacingOccurrences(of: ".", with: " "))?" }
            steps.append { $0.callerTurn.text = "It's \(value)." }
            steps.append {
                $0.slotCaptured.name = slot
                $0.slotCaptured.value = value
                $0.slotCaptured.confirmed = true
            }
        }
        if !kind.verified.isEmpty {
            let method = kind.verified
            steps.append { $0.identityVerified.method = method }
        }
        if confused {
            // The model loses the thread and asks for a human outside every gate, in both modes.
            steps.append { $0.aiEscalation.reason = "the model could not follow the request" }
            return steps
        }
        if !kind.intent.isEmpty, mode == .handoff {
            let intent = kind.intent
            steps.append { $0.intentDetected.intent = intent }
        }
        if kind.insists {
            // Without a gate, the caller has to ask for a person, and the AI gives up.
            steps.append { $0.callerTurn.text = "Can I speak to someone about this, please?" }
            if mode == .failover {
                steps.append { $0.aiEscalation.reason = "the caller asked for a person" }
            }
        }
        steps.append { $0.aiTurn.text = "Is there anything else I can help with?" }
        return steps
    }
}

/// The simulation cannot run as asked; the message says why.
struct SimulationError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
