import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Foundation
import GRDB
import SwiftProtobuf
import Synchronization
import Testing

/// Collects what a stream sends, in a task of its own, until cancelled.
final class Collected<Update: SwiftProtobuf.Message>: Sendable {
    private final class Storage: Sendable {
        let updates = Mutex<[Update]>([])
    }
    private let storage = Storage()
    private let task: Task<Void, Never>

    init(_ stream: RPCResponseStream<Update>) {
        let storage = self.storage
        self.task = Task {
            do {
                for try await update in stream {
                    storage.updates.withLock { $0.append(update) }
                }
            } catch {}
        }
    }

    var all: [Update] { self.storage.updates.withLock { $0 } }

    /// Waits until an update satisfies `condition`, and returns it.
    func first(within timeout: Duration = .seconds(10), where condition: (Update) -> Bool) async -> Update? {
        _ = await eventually(within: timeout) { self.all.contains(where: condition) }
        return self.all.first(where: condition)
    }

    func cancel() {
        self.task.cancel()
    }
}

extension BatonHarness {
    /// A desk watching `destination`'s briefs as `agent`, collecting what it is sent.
    func watchDesk(_ destination: String, agent: String) throws -> Collected<Baton_Context_V1_BriefUpdate> {
        Collected(
            try self.assembler.watchBriefs(
                .with {
                    $0.destinationID = destination
                    $0.agentID = agent
                }
            )
        )
    }
}

@Suite("Context assembler, with the four processes over their sockets", .serialized)
struct ContextAssemblerProcessTests {
    @Test(
        "a billing call's payment intent hands off to a PCI desk with the brief; the desk sees it, acks it; the collector counts a handoff"
    )
    func wholePath() async throws {
        try await BatonHarness.with { baton in
            let desk = try baton.watchDesk("desk-a", agent: "agent-1")
            defer { desk.cancel() }
            try await baton.verifiedCaller("call-1")
            let reply = try await baton.paymentIntent("call-1")
            #expect(reply.outcome == .handoff)
            let plan = reply.plan
            #expect(plan.outcome == .transfer && plan.destinationID == "desk-a" && plan.gateID == "take-payment")
            #expect(plan.category == "payment" && !plan.undesigned && plan.attempt == 1)
            #expect(plan.transferAddress == "sip:desk-a@pbx.test")
            let token = try #require(plan.sipHeaders["X-Baton-Handoff"])
            #expect(token.count == 32 && token == plan.brief.token)
            let brief = plan.brief
            #expect(
                brief.callerName == "Jane Doe" && brief.verified && brief.verificationMethod == "knowledge_questions"
            )
            #expect(brief.facts.prefix(3).map(\.slot) == ["identity.name", "account.id", "card.last4"])
            #expect(brief.facts.allSatisfy(\.declared) && brief.missing.isEmpty && brief.revision == 1)
            #expect(brief.phoneMasked == "+353 ••• ••• 567" && brief.intents == ["make_payment"])
            #expect(brief.keyTurns.contains { $0.text == "My card is [card ending 1111], CVV [security code removed]" })
            #expect(plan.callerText.contains("who can already see your name, your account, the card you're using"))
            #expect(plan.whisper.hasPrefix("Jane Doe, verified by knowledge_questions, account AC-1234-5678"))

            let delivered = await desk.first { $0.kind == .new }
            #expect(delivered?.brief == brief)

            // A retry of the same event answers the first reply, and no second handoff.
            let again = try await baton.paymentIntent("call-1")
            #expect(again.duplicate && again.plan == plan)

            let byToken = try await baton.assembler.getBrief(.with { $0.token = token })
            #expect(byToken == brief)
            let unknown = await #expect(throws: RPCError.self) {
                try await baton.assembler.getBrief(.with { $0.token = String(repeating: "0", count: 32) })
            }
            #expect(unknown?.code == .notFound && unknown?.message == "no brief has that token")

            let shown = Int64(Date().timeIntervalSince1970 * 1000)
            let acked = try await baton.assembler.ackBrief(
                .with {
                    $0.handoffID = plan.handoffID
                    $0.revision = 1
                    $0.agentID = "agent-1"
                    $0.displayedAtUnixMs = shown
                }
            )
            #expect(acked.displayedAtUnixMs == shown)
            for kind in [Baton_Context_V1_ReportTransferRequest.Kind.transferStarted, .humanConnected, .humanGreeted] {
                _ = try await baton.assembler.reportTransfer(
                    .with {
                        $0.handoffID = plan.handoffID
                        $0.kind = kind
                    }
                )
            }
            let handoff = try await baton.assembler.getCall(.with { $0.callID = "call-1" }).handoffs
            #expect(handoff.map(\.state) == [.greeted])

            // The outbox reaches the collector, which classifies it.
            var classified = Baton_Metrics_V1_Handoff()
            let counted = await eventually {
                guard let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = plan.handoffID }) else {
                    return false
                }
                classified = found
                return found.classification == .handoff
            }
            #expect(counted, "the collector has \(classified)")
            #expect(classified.attributes.destination == "desk-a" && classified.attributes.gate == "take-payment")

            _ = try await baton.assembler.closeCall(.with { $0.callID = "call-1" })
            let explained = try await baton.router.explain(.with { $0.handoffID = plan.handoffID })
            #expect(explained.reservations.map(\.state) == [.released])

            // No file any process wrote holds the digits of the card the caller spoke.
            await baton.stopProcesses()
            for file in try Self.files(under: baton.directory.path) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                for digits in ["4111111111111111", "4111 1111 1111 1111", "CVV 737"] {
                    #expect(bytes.range(of: Data(digits.utf8)) == nil, "\(file) holds \(digits)")
                }
            }
        }
    }

    @Test("an AI escalation outside every gate is an undesigned handoff, which the collector counts as a failover")
    func undesignedEscalation() async throws {
        try await BatonHarness.with { baton in
            _ = try await baton.open("call-2")
            _ = try await baton.record("call-2", "e1", .callerTurn(.with { $0.text = "This is ridiculous" }))
            let reply = try await baton.record("call-2", "e2", .aiEscalation(.with { $0.reason = "caller is upset" }))
            #expect(reply.outcome == .handoff && reply.plan.undesigned && reply.plan.gateID.isEmpty)
            #expect(reply.plan.category == "ai_escalation" && reply.plan.outcome == .transfer)
            let counted = await eventually {
                let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = reply.plan.handoffID })
                return found?.reasons.contains { $0.reason == .undesigned } == true
            }
            #expect(counted)
            let listed = try await ServiceProcess.run(
                path: ServiceProcess.productsDirectory + "/batonctl",
                arguments: ["handoffs", "--since", "1h"],
                in: baton.directory
            )
            #expect(listed.status == 0, "\(listed.output)")
            // Not greeted yet, so still in progress, with its reason to be a failover already known.
            let line = listed.output.split(separator: "\n").first { $0.contains(reply.plan.handoffID) }
            #expect(line?.contains("in progress") == true, "\(listed.output)")
            #expect(line?.contains("undesigned") == true, "\(listed.output)")
            #expect(line?.contains("billing-support/-") == true, "\(listed.output)")
        }
    }

    @Test("a decline moves the brief from desk A to desk B, and WatchCall tells the AI the new plan")
    func declineReroutes() async throws {
        try await BatonHarness.with { baton in
            let deskA = try baton.watchDesk("desk-a", agent: "a")
            let deskB = try baton.watchDesk("desk-b", agent: "b")
            defer {
                deskA.cancel()
                deskB.cancel()
            }
            try await baton.verifiedCaller("call-3")
            let ai = Collected(try baton.assembler.watchCall(.with { $0.callID = "call-3" }))
            defer { ai.cancel() }
            let plan = try await baton.paymentIntent("call-3").plan
            #expect(plan.destinationID == "desk-a")
            let decline = Baton_Context_V1_DeclineRequest.with {
                $0.handoffID = plan.handoffID
                $0.agentID = "a"
                $0.reason = "on another call"
                $0.destinationID = "desk-a"
            }
            let declined = try await baton.assembler.decline(decline)
            #expect(declined.plan.destinationID == "desk-b" && declined.plan.attempt == 2)
            // A retry whose first reply was lost: the handoff stays at desk-b.
            let repeated = try await baton.assembler.decline(decline)
            #expect(repeated == declined)
            #expect(declined.plan.brief.revision == 2 && declined.plan.brief.changed == ["destination"])
            let withdrawn = await deskA.first { $0.kind == .withdrawn }
            #expect(withdrawn?.reason == .rerouted && withdrawn?.brief.handoffID == plan.handoffID)
            let arrived = await deskB.first { $0.kind == .new }
            #expect(arrived?.brief.handoffID == plan.handoffID && arrived?.brief.destinationID == "desk-b")
            let told = await ai.first { $0.kind == .planChanged }
            #expect(told?.handoff.plan.destinationID == "desk-b")
            #expect(told?.handoff.plan.transferAddress == "sip:desk-b@partner.test")
        }
    }

    @Test(
        "a failed transfer is routed again and the AI hears the new plan; a caller who hangs up while it rings releases the reservation and withdraws the brief"
    )
    func failedTransferAndHangUp() async throws {
        try await BatonHarness.with { baton in
            let deskB = try baton.watchDesk("desk-b", agent: "b")
            defer { deskB.cancel() }
            try await baton.verifiedCaller("call-8")
            let ai = Collected(try baton.assembler.watchCall(.with { $0.callID = "call-8" }))
            defer { ai.cancel() }
            let plan = try await baton.paymentIntent("call-8").plan
            let report = Baton_Context_V1_ReportTransferRequest.with {
                $0.handoffID = plan.handoffID
                $0.kind = .transferFailed
                $0.sipStatus = 503
                $0.destinationID = "desk-a"
            }
            let failed = try await baton.assembler.reportTransfer(report)
            #expect(failed.plan.destinationID == "desk-b" && failed.declinedBy == ["desk-a"])
            #expect(try await baton.assembler.reportTransfer(report) == failed)
            var elsewhere = report
            elsewhere.destinationID = "desk-z"
            await #expect(throws: RPCError.self) {
                try await baton.assembler.reportTransfer(elsewhere)
            }
            let told = await ai.first { $0.kind == .planChanged }
            #expect(told?.handoff.plan.transferAddress == "sip:desk-b@partner.test")
            #expect(await deskB.first { $0.kind == .new } != nil)
            let hungUp = try await baton.assembler.reportTransfer(
                .with {
                    $0.handoffID = plan.handoffID
                    $0.kind = .callerHungUp
                }
            )
            #expect(hungUp.state == .ended)
            let withdrawn = await deskB.first { $0.kind == .withdrawn }
            #expect(withdrawn?.reason == .callerHungUp)
            #expect(await ai.first { $0.kind == .callClosed } != nil)
            let explained = try await baton.router.explain(.with { $0.handoffID = plan.handoffID })
            #expect(explained.reservations.allSatisfy { $0.state != .held && $0.state != .accepted })
            let counted = await eventually {
                let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = plan.handoffID })
                return found?.reasons.contains { $0.reason == .transferFailed } == true
            }
            #expect(counted)
        }
    }

    @Test("when no destination can take the handoff, the plan says so in words for the caller, and no desk gets it")
    func noDestination() async throws {
        try await BatonHarness.with { baton in
            _ = try await baton.open("call-9", workflow: "bereavement")
            let reply = try await baton.record(
                "call-9",
                "e1",
                .callerTurn(.with { $0.text = "My husband passed away last week" })
            )
            #expect(reply.outcome == .handoff && reply.plan.outcome == .noDestination)
            #expect(reply.plan.gateID == "loss-reported" && reply.plan.destinationID.isEmpty)
            #expect(reply.plan.sipHeaders.isEmpty && !reply.plan.callerText.isEmpty)
            #expect(reply.plan.brief.missing == ["caller.name", "deceased.name", "relationship"])
            let call = try await baton.assembler.getCall(.with { $0.callID = "call-9" })
            #expect(call.handoffs.map(\.state) == [.noDestination])
            // The AI goes on; the call is not stuck in a handoff that cannot happen.
            let next = try await baton.record("call-9", "e2", .aiTurn(.with { $0.text = "I'm so sorry." }))
            #expect(next.outcome == .continue)
        }
    }

    @Test("restating the account number after the handoff is one caller_repeated; a fact the brief lacked is none")
    func repeats() async throws {
        try await BatonHarness.with { baton in
            try await baton.verifiedCaller("call-4")
            let plan = try await baton.paymentIntent("call-4").plan
            let first = try await baton.record(
                "call-4",
                "e8",
                .callerTurn(.with { $0.text = "my postcode is D02 X285, if that helps" })
            )
            #expect(first.repeatedSlots.isEmpty)
            let second = try await baton.record(
                "call-4",
                "e9",
                .callerTurn(.with { $0.text = "again, my account number is A C 1234 5678" })
            )
            #expect(second.repeatedSlots == ["account.id"])
            let counted = await eventually {
                let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = plan.handoffID })
                return found?.repeatedSlots == ["account.id"]
            }
            #expect(counted)
            // A new fact while the transfer rings makes revision 2, which says what changed.
            _ = try await baton.record(
                "call-4",
                "e10",
                .slotCaptured(
                    .with {
                        $0.name = "refund_amount"
                        $0.value = "20"
                    }
                )
            )
            let brief = try await baton.assembler.getBrief(.with { $0.handoffID = plan.handoffID })
            #expect(brief.revision == 2 && brief.changed == ["facts.refund_amount"])

            // batonctl shows the open call and the brief as a person reads it.
            let batonctl = ServiceProcess.productsDirectory + "/batonctl"
            let calls = try await ServiceProcess.run(path: batonctl, arguments: ["calls"], in: baton.directory)
            #expect(calls.status == 0 && calls.output.contains("call-4") && calls.output.contains(plan.handoffID))
            let shown = try await ServiceProcess.run(
                path: batonctl,
                arguments: ["brief", plan.handoffID],
                in: baton.directory
            )
            #expect(shown.status == 0 && shown.output.contains("account.id: AC-1234-5678 (confirmed)"))
            #expect(shown.output.contains("Jane Doe, verified by knowledge_questions"))
            #expect(shown.output.contains("changed in this revision: facts.refund_amount"))
            let missing = try await ServiceProcess.run(
                path: batonctl,
                arguments: ["brief", "nope"],
                in: baton.directory
            )
            #expect(missing.status == 1 && missing.output.contains("no handoff 'nope'"))
            // And why the router sent it where it went.
            let explained = try await ServiceProcess.run(
                path: batonctl,
                arguments: ["explain", plan.handoffID],
                in: baton.directory
            )
            #expect(explained.status == 0, "\(explained.output)")
            #expect(explained.output.contains("Attempt 1 at "))
            #expect(explained.output.contains(": to desk-a, predicted "), "\(explained.output)")
            #expect(explained.output.contains("  chosen     desk-a: "))
            #expect(explained.output.contains("Reservations:"))
        }
    }

    @Test("after a hand back the AI continues, and the payment gate does not fire again")
    func handBack() async throws {
        try await BatonHarness.with { baton in
            try await baton.verifiedCaller("call-5")
            let plan = try await baton.paymentIntent("call-5").plan
            let ai = Collected(try baton.assembler.watchCall(.with { $0.callID = "call-5" }))
            defer { ai.cancel() }
            let request = Baton_Context_V1_HandBackRequest.with {
                $0.handoffID = plan.handoffID
                $0.outcome = .done
                $0.notes = "payment taken"
                $0.slots = ["payment.status": "taken"]
            }
            let back = try await baton.assembler.handBack(request)
            #expect(back.state == .handedBack)
            #expect(try await baton.assembler.handBack(request) == back)
            #expect(await ai.first { $0.kind == .handedBack } != nil)
            let next = try await baton.record("call-5", "e8", .intentDetected(.with { $0.intent = "update_card" }))
            #expect(next.outcome == .continue)
            let call = try await baton.assembler.getCall(.with { $0.callID = "call-5" })
            #expect(call.events.contains { $0.event.slotCaptured.name == "payment.status" })
        }
    }

    @Test("bad requests get INVALID_ARGUMENT, NOT_FOUND or ALREADY_EXISTS naming the field or value")
    func errors() async throws {
        try await BatonHarness.with { baton in
            func code(_ body: () async throws -> Void) async -> RPCError? {
                await #expect(throws: RPCError.self) { try await body() }
            }
            let unknown = await code { _ = try await baton.open("c", workflow: "nope") }
            #expect(unknown?.code == .notFound && unknown?.message.contains("billing-support") == true)
            _ = try await baton.open("c")
            _ = try await baton.open("c")  // the same values again: fine
            let other = await code {
                _ = try await baton.assembler.openCall(
                    .with {
                        $0.callID = "c"
                        $0.workflowID = "general"
                    }
                )
            }
            #expect(other?.code == .alreadyExists)
            let noCall = await code { _ = try await baton.record("ghost", "e1", .aiTurn(.with { $0.text = "hi" })) }
            #expect(noCall?.code == .invalidArgument && noCall?.message.contains("ghost") == true)
            let noKind = await code {
                _ = try await baton.assembler.record(
                    .with {
                        $0.event = .with {
                            $0.callID = "c"
                            $0.eventID = "x"
                        }
                    }
                )
            }
            #expect(noKind?.message.contains("event has no kind") == true)
            let future = await code {
                _ = try await baton.assembler.record(
                    .with {
                        $0.event = .with {
                            $0.callID = "c"
                            $0.eventID = "x"
                            $0.atUnixMs = Int64(Date().timeIntervalSince1970 * 1000) + 7_200_000
                            $0.aiTurn = .with { $0.text = "hi" }
                        }
                    }
                )
            }
            #expect(future?.message.contains("event.at_unix_ms") == true)
            let long = await code {
                _ = try await baton.record(
                    "c",
                    "x",
                    .callerTurn(.with { $0.text = String(repeating: "a", count: 5000) })
                )
            }
            #expect(long?.message.contains("event.caller_turn.text is 5000 characters") == true)
            let emptyID = await code { _ = try await baton.record("c", "", .aiTurn(.with { $0.text = "hi" })) }
            #expect(emptyID?.message.contains("event.event_id is empty") == true)
            // An undeclared slot is accepted and marked so in the brief.
            _ = try await baton.record(
                "c",
                "s1",
                .slotCaptured(
                    .with {
                        $0.name = "caller.mood"
                        $0.value = "calm"
                    }
                )
            )
            let plan = try await baton.paymentIntent("c").plan
            #expect(plan.brief.facts.first { $0.slot == "caller.mood" }?.declared == false)
            #expect(plan.brief.missing == ["identity.name", "account.id", "card.last4"])
            let badRevision = await code {
                _ = try await baton.assembler.ackBrief(
                    .with {
                        $0.handoffID = plan.handoffID
                        $0.revision = 9
                        $0.agentID = "a"
                    }
                )
            }
            #expect(badRevision?.message.contains("revision 9 was never sent") == true)
            _ = try await baton.assembler.closeCall(.with { $0.callID = "c" })
            let closed = await code { _ = try await baton.record("c", "late", .aiTurn(.with { $0.text = "bye" })) }
            #expect(closed?.message.contains("is closed") == true)
        }
    }

    @Test("with the gate-evaluator down Record answers UNAVAILABLE with nothing applied; the same event works later")
    func dependencyDown() async throws {
        try await BatonHarness.with(assemblerArguments: ["--dependency-timeout", "0.5"]) { baton in
            try await baton.verifiedCaller("call-6")
            await baton.kill("gate-evaluator")
            let down = await #expect(throws: RPCError.self) { try await baton.paymentIntent("call-6") }
            #expect(down?.code == .unavailable && down?.message.contains("the gate-evaluator") == true)
            try await baton.start("gate-evaluator")
            let reply = try await baton.paymentIntent("call-6")
            #expect(reply.outcome == .handoff && !reply.duplicate)
        }
    }

    /// A connection that waits for another process's write lock instead of failing on SQLITE_BUSY.
    static var waitingForLocks: Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        return configuration
    }

    @Test(
        "a new brief reaches the desk while its handoff is stored; when that write fails it is withdrawn, nothing is applied, and the retry offers it again"
    )
    func briefWithdrawnWhenNotStored() async throws {
        try await BatonHarness.with { baton in
            // Not `watchDesk`: with it, Swift 6.3.1's SendNonSendable pass crashes compiling this closure.
            let desk = Collected(
                try baton.assembler.watchBriefs(
                    .with {
                        $0.destinationID = "desk-a"
                        $0.agentID = "agent-1"
                    }
                )
            )
            defer { desk.cancel() }
            try await baton.verifiedCaller("call-9")
            // The assembler's own database refuses the handoff's row, as a full disk would. (Its writer may hold
            // the lock for a moment: wait for it rather than fail.)
            let database = try DatabaseQueue(
                path: baton.directory.appending("var/data/context.sqlite"),
                configuration: Self.waitingForLocks
            )
            try await database.write {
                try $0.execute(
                    sql: "CREATE TRIGGER refuse BEFORE INSERT ON handoffs BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            }
            let failed = await #expect(throws: RPCError.self) { try await baton.paymentIntent("call-9") }
            #expect(failed?.code == .internal)
            let withdrawn = try #require(await desk.first { $0.kind == .withdrawn })
            #expect(withdrawn.reason == .notStored && withdrawn.brief.handoffID == "call-9-h1")
            #expect(desk.all.map(\.kind) == [.new, .withdrawn])
            let unknown = await #expect(throws: RPCError.self) {
                try await baton.assembler.ackBrief(
                    .with {
                        $0.handoffID = "call-9-h1"
                        $0.revision = 1
                        $0.agentID = "agent-1"
                    }
                )
            }
            #expect(unknown?.code == .notFound)
            let call = try await baton.assembler.getCall(.with { $0.callID = "call-9" })
            #expect(call.handoffs.isEmpty && !call.events.contains { $0.event.eventID == "e7" })

            try await database.write { try $0.execute(sql: "DROP TRIGGER refuse") }
            let retry = try await baton.paymentIntent("call-9")
            #expect(retry.outcome == .handoff && !retry.duplicate && retry.plan.handoffID == "call-9-h1")
            let offered = await desk.first { $0.kind == .new && $0.brief.token == retry.plan.brief.token }
            #expect(offered?.brief == retry.plan.brief)
            // One reservation: the router answered the retry with the one it held.
            let destinations = try await baton.router.listDestinations(.init()).destinations
            let reservations = destinations.flatMap(\.reservations)
            #expect(reservations.filter { $0.handoffID == "call-9-h1" }.count == 1)
        }
    }

    @Test("with nothing to do, none of the four processes spends CPU, also after the outbox sender has waited")
    func idleProcessesRest() async throws {
        try await BatonHarness.with { baton in
            // A handoff fills the outbox and wakes its sender; then the sender's one-second wait times out at least
            // once, which is when it used to start spinning (a whole core, for good).
            try await baton.verifiedCaller("call-idle")
            _ = try await baton.paymentIntent("call-idle")
            #expect(
                await eventually {
                    (try? await baton.metrics.getHandoff(.with { $0.handoffID = "call-idle-h1" })) != nil
                }
            )
            try await Task.sleep(for: .milliseconds(1500))
            // Each process's CPU seconds so far; a process that cannot be read fails the test rather than pass it.
            func cpu() throws -> [Double] {
                try BatonHarness.processes.map { name in
                    let pid = try #require(baton.pid(of: name), "\(name) runs")
                    return try #require(Benchmarking.cpuSeconds(of: pid), "\(name)'s CPU time")
                }
            }
            let before = try cpu()
            let clock = ContinuousClock()
            let start = clock.now
            try await Task.sleep(for: .seconds(2))
            let wall = Benchmarking.seconds(clock.now - start)
            let after = try cpu()
            for (index, name) in BatonHarness.processes.enumerated() {
                // A spinning loop uses about the whole wall time; a resting process, a few milliseconds.
                #expect(
                    after[index] - before[index] < wall * 0.15,
                    "\(name) used \(after[index] - before[index]) s of CPU in \(wall) s idle"
                )
            }
        }
    }

    @Test("kill -9 of the assembler loses no acknowledged event, and a desk that reconnects gets the open brief again")
    func assemblerCrash() async throws {
        try await BatonHarness.with { baton in
            try await baton.verifiedCaller("call-7")
            let plan = try await baton.paymentIntent("call-7").plan
            await baton.kill("context-assembler")
            try await baton.start("context-assembler")
            let desk = try baton.watchDesk("desk-a", agent: "a")
            defer { desk.cancel() }
            let offered = await desk.first { $0.kind == .open }
            #expect(offered?.brief == plan.brief)
            let call = try await baton.assembler.getCall(.with { $0.callID = "call-7" })
            #expect(call.events.map(\.event.eventID) == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"])
            let again = try await baton.paymentIntent("call-7")
            #expect(again.duplicate && again.plan == plan)
            // The call's context came back: a repeat is still detected against the brief.
            let turn = try await baton.record("call-7", "e8", .callerTurn(.with { $0.text = "I'm Jane Doe" }))
            #expect(turn.repeatedSlots == ["identity.name"])
        }
    }

    @Test(
        "kill -9 of each of the four processes during a stream of calls: no acknowledged event lost or doubled, every timeline event counted once, every open brief offered again"
    )
    func killEachProcess() async throws {
        try await BatonHarness.with { baton in
            let calls = (1...12).map { "chaos-\($0)" }
            let acknowledged = Counter()
            /// Records until acknowledged, retrying the same event id as an AI would while a process restarts.
            @Sendable func persist(
                _ call: String,
                _ id: String,
                _ kind: Baton_Context_V1_Event.OneOf_Kind
            ) async throws
                -> Baton_Context_V1_RecordReply
            {
                let clock = ContinuousClock()
                let end = clock.now + .seconds(60)
                while true {
                    do {
                        let reply = try await baton.record(call, id, kind)
                        acknowledged.increment()
                        return reply
                    } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                        guard clock.now < end else {
                            throw error
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            let events: [(String, Baton_Context_V1_Event.OneOf_Kind)] = [
                ("e1", .callerTurn(.with { $0.text = "I want to pay my bill" })),
                (
                    "e2",
                    .slotCaptured(
                        .with {
                            $0.name = "identity.name"
                            $0.value = "Jane Doe"
                        }
                    )
                ),
                ("e3", .aiTurn(.with { $0.text = "Thanks Jane" })),
                (
                    "e4",
                    .slotCaptured(
                        .with {
                            $0.name = "account.id"
                            $0.value = "AC-99"
                        }
                    )
                ),
                ("e5", .identityVerified(.with { $0.method = "otp" })),
                ("e6", .callerTurn(.with { $0.text = "I'd like to pay now" })),
                ("e7", .intentDetected(.with { $0.intent = "make_payment" })),
                ("e8", .callerTurn(.with { $0.text = "is that ok" })),
            ]
            let plans = try await withThrowingTaskGroup(of: (String, String).self) { group in
                group.addTask {
                    for (threshold, name) in zip([8, 24, 40, 56], BatonHarness.processes) {
                        _ = await eventually(within: .seconds(30)) { acknowledged.value >= threshold }
                        await baton.kill(name)
                        try await baton.start(name)
                    }
                    return ("", "")
                }
                for call in calls {
                    group.addTask {
                        try await Self.openPersistently(baton, call)
                        var handoff = ""
                        for (id, kind) in events {
                            let reply = try await persist(call, id, kind)
                            if reply.outcome == .handoff {
                                handoff = reply.plan.handoffID
                            }
                            try await Task.sleep(for: .milliseconds(15))
                        }
                        return (call, handoff)
                    }
                }
                var plans: [String: String] = [:]
                for try await (call, handoff) in group where !call.isEmpty {
                    plans[call] = handoff
                }
                return plans
            }
            for call in calls {
                let stored = try await baton.assembler.getCall(.with { $0.callID = call })
                #expect(stored.events.map(\.event.eventID) == events.map(\.0), "\(call)")
                #expect(stored.handoffs.map(\.handoffID) == [plans[call] ?? "?"], "\(call)")
            }
            // Every handoff's timeline reaches the collector exactly once: gate_fired, brief_ready, routed.
            for handoff in plans.values {
                let complete = await eventually(within: .seconds(20)) {
                    let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = handoff })
                    return found?.events == 3
                }
                let found = try? await baton.metrics.getHandoff(.with { $0.handoffID = handoff })
                #expect(complete, "\(handoff): \(String(describing: found?.timeline.map(\.kind)))")
                #expect(found.map { Set($0.timeline.map(\.kind)) } == [.gateFired, .briefReady, .routed])
            }
            // A desk that connects after one more crash gets every open brief.
            await baton.kill("context-assembler")
            try await baton.start("context-assembler")
            // The briefs are split between the two desks: wait for both together.
            let desks = try ["desk-a", "desk-b"].map { destination in
                try baton.watchDesk(destination, agent: "x")
            }
            func offered() -> Set<String> {
                Set(desks.flatMap { $0.all.filter { $0.kind == .open }.map(\.brief.handoffID) })
            }
            _ = await eventually { offered() == Set(plans.values) }
            desks.forEach { $0.cancel() }
            #expect(offered() == Set(plans.values))
        }
    }

    static func openPersistently(_ baton: BatonHarness, _ call: String) async throws {
        while true {
            do {
                _ = try await baton.open(call)
                return
            } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func files(under path: String) throws -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var files: [String] = []
        while let name = enumerator?.nextObject() as? String {
            let full = path + "/" + name
            let type = try FileManager.default.attributesOfItem(atPath: full)[.type] as? FileAttributeType
            if type == .typeRegular {
                files.append(full)
            }
        }
        return files
    }
}
