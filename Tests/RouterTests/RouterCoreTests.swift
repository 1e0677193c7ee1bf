import BatonProto
import BatonRPC
import BatonStore
import BatonTestKit
import Foundation
import GRDB
import Logging
import SwiftProtobuf
import Synchronization
import Testing

@testable import RouterKit

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let time = Mutex(moment("2026-11-25 12:00", in: "UTC"))

    var now: Date { self.time.withLock { $0 } }

    func advance(_ seconds: Double) {
        self.time.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// A RouterCore on a real SQLite file in a temporary directory, reopened as a restarted process would.
struct Harness {
    static let yaml = """
        policy:
          reservation_timeout_s: 30
        destinations:
          - id: in-house
            kind: in_house
            skills: [billing]
            transfer: sip:in@example
            agents: 3
            average_handle_s: 600
            context: live
          - id: partner
            kind: partner
            skills: [billing]
            transfer: sip:partner@example
            agents: 5
            average_handle_s: 600
            context: live
        """

    let directory: TemporaryDirectory
    let clock = TestClock()

    init(yaml: String = Self.yaml) throws {
        self.directory = try TemporaryDirectory()
        try yaml.write(toFile: self.directory.appending("destinations.yaml"), atomically: false, encoding: .utf8)
    }

    func open() throws -> RouterCore {
        var logger = Logger(label: "router-test")
        logger.logLevel = .critical
        let clock = self.clock
        return try RouterCore(
            file: self.directory.appending("destinations.yaml"),
            database: self.directory.appending("router.sqlite"),
            logger: logger,
            now: { clock.now }
        )
    }
}

func routeRequest(_ handoff: String, urgent: Bool = false) -> Baton_Routing_V1_RouteRequest {
    var request = Baton_Routing_V1_RouteRequest()
    request.callID = "call-\(handoff)"
    request.handoffID = handoff
    request.category = "judgement"
    request.skills = ["billing"]
    request.priority = urgent ? .urgent : .normal
    return request
}

/// Routes handoffs `h-0` ... at once, each in a task of its own; returns the replies in the order they came.
func routeConcurrently(_ core: RouterCore, handoffs: Int) async throws -> [Baton_Routing_V1_RouteReply] {
    try await withThrowingTaskGroup(of: Baton_Routing_V1_RouteReply.self) { group in
        for index in 0..<handoffs {
            group.addTask { try await core.route(routeRequest("h-\(index)")).reply }
        }
        return try await group.reduce(into: []) { $0.append($1) }
    }
}

@Suite("Router reservations")
struct RouterCoreTests {
    @Test("1,000 concurrent routes never over-commit a destination, and the rest hear NO_DESTINATION")
    func concurrentRoutes() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let replies = try await routeConcurrently(core, handoffs: 1000)
        let routed = replies.filter { $0.outcome == .routed }
        #expect(routed.count == 8)  // 3 in-house agents and 5 partner agents; a queued caller would wait 200 s+
        #expect(routed.count { $0.destinationID == "in-house" } == 3)
        #expect(routed.count { $0.destinationID == "partner" } == 5)
        #expect(Set(routed.map(\.reservationID)).count == 8)
        #expect(replies.count { $0.outcome == .noDestination } == 992)
        let listed = core.list().destinations
        #expect(listed.map(\.heldReservations) == [3, 5])
    }

    @Test("accept, release and a repeated Route: capacity is held, then freed")
    func acceptAndRelease() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let first = try await core.route(routeRequest("h-1")).reply
        #expect(first.outcome == .routed && first.destinationID == "in-house" && first.attempt == 1)
        #expect(try await core.route(routeRequest("h-1")).reply == first)  // a retry gets the same decision
        let accepted = try await core.accept(first.reservationID)
        #expect(accepted.state == .accepted)
        #expect(core.list().destinations[0].acceptedReservations == 1)
        let released = try await core.release(first.reservationID, outcome: .connected)
        #expect(released.state == .released && released.detail == "connected")
        #expect(core.list().destinations[0].acceptedReservations == 0)
        await #expect(throws: RPCError.self) { try await core.accept(first.reservationID) }
        let unknown = await #expect(throws: RPCError.self) { try await core.accept("rsv-nope") }
        #expect(unknown?.code == .notFound)
        let unset = await #expect(throws: RPCError.self) { try await core.release("rsv-nope", outcome: .unspecified) }
        #expect(unset?.code == .invalidArgument)
    }

    @Test(
        "the ring-and-greet time is learned from the hellos of handoffs answered at once, and the prediction follows"
    )
    func learnsRingAndGreet() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        #expect(core.list().destinations[0].ringAndGreetMs == 3_000)
        /// Routes a handoff, and releases it connected with its hello `seconds` after the decision.
        func handoff(_ id: String, hello seconds: Double, report: Bool = true) async throws -> UInt32 {
            let routed = try await core.route(routeRequest(id)).reply
            let greeted = Int64(((harness.clock.now.timeIntervalSince1970 + seconds) * 1000).rounded())
            harness.clock.advance(seconds)
            _ = try await core.release(routed.reservationID, outcome: .connected, greetedAt: report ? greeted : 0)
            return routed.predictedLiveHumanMs
        }
        for (index, seconds) in [5.0, 5.5, 6.0, 4.5].enumerated() {
            #expect(try await handoff("h-\(index)", hello: seconds) == 3_000, "four observations are not enough")
        }
        #expect(try await handoff("h-unreported", hello: 40, report: false) == 3_000)
        _ = try await handoff("h-4", hello: 5.2)
        let learned = core.list().destinations[0]
        #expect(learned.ringAndGreetObservations == 5)
        #expect(learned.ringAndGreetMs == 5_200, "the median of 4.5, 5, 5.2, 5.5 and 6 s")
        #expect(learned.predictedLiveHumanMs == 5_200)
        #expect(core.list().destinations[1].ringAndGreetMs == 3_000, "each destination learns its own")
        // In-house now predicts 5.2 s, over the 5 s target, so the partner (still at its 3 s) takes the next one.
        let next = try await core.route(routeRequest("h-5")).reply
        #expect(next.destinationID == "partner" && next.predictedLiveHumanMs == 3_000)
        let hello = Int64(((harness.clock.now.timeIntervalSince1970 + 20) * 1000).rounded())
        _ = try await core.release(next.reservationID, outcome: .connected, greetedAt: hello)
        #expect(core.list().destinations[1].ringAndGreetObservations == 1)
        #expect(core.list().destinations[0].ringAndGreetObservations == 5, "in-house heard no hello of it")
    }

    @Test("a caller who waited in a queue teaches nothing: only handoffs routed to a free agent are observed")
    func queuedTeachesNothing() async throws {
        let harness = try Harness(
            yaml: """
                destinations:
                  - id: small
                    kind: in_house
                    skills: [billing]
                    transfer: sip:small@example
                    agents: 1
                    average_handle_s: 4
                    context: live
                """
        )
        defer { harness.directory.remove() }
        let core = try harness.open()
        let free = try await core.route(routeRequest("h-free")).reply
        let queued = try await core.route(routeRequest("h-queued")).reply
        #expect(free.predictedLiveHumanMs == 3_000 && queued.predictedLiveHumanMs == 7_000, "3 s, then 3 + 4 s")
        let hello = Int64((harness.clock.now.timeIntervalSince1970 + 30) * 1000)
        _ = try await core.release(queued.reservationID, outcome: .connected, greetedAt: hello)
        #expect(core.list().destinations[0].ringAndGreetObservations == 0)
        _ = try await core.release(free.reservationID, outcome: .connected, greetedAt: hello)
        #expect(core.list().destinations[0].ringAndGreetObservations == 1)
    }

    @Test("with learn_ring_and_greet off, the policy's ring_and_greet_s stays")
    func learningOff() async throws {
        let harness = try Harness(
            yaml: Harness.yaml.replacingOccurrences(of: "policy:\n", with: "policy:\n  learn_ring_and_greet: false\n")
        )
        defer { harness.directory.remove() }
        let core = try harness.open()
        for index in 0..<6 {
            let routed = try await core.route(routeRequest("h-\(index)")).reply
            let greeted = Int64((harness.clock.now.timeIntervalSince1970 + 8) * 1000)
            _ = try await core.release(routed.reservationID, outcome: .connected, greetedAt: greeted)
        }
        #expect(core.list().destinations[0].ringAndGreetObservations == 6)
        #expect(core.list().destinations[0].ringAndGreetMs == 3_000)
        #expect(core.list().destinations[0].predictedLiveHumanMs == 3_000)
    }

    @Test("decline frees the capacity and re-routes at once, never back to who declined")
    func decline() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let first = try await core.route(routeRequest("h-1")).reply
        let second = try await core.decline(first.reservationID, reason: "agent stepped away").reply
        #expect(second.outcome == .routed && second.destinationID == "partner" && second.attempt == 2)
        #expect(second.reasons.first { $0.destinationIds.contains("in-house") }?.text == "declined this handoff")
        #expect(core.list().destinations.map(\.heldReservations) == [0, 1])
        let third = try await core.decline(second.reservationID, reason: "").reply
        #expect(third.outcome == .noDestination && third.attempt == 3)
        let explained = try await core.explain("h-1")
        #expect(explained.decisions.map(\.attempt) == [1, 2, 3])
        #expect(explained.reservations.map(\.state) == [.declined, .declined])
        #expect(explained.reservations.first?.detail == "declined: agent stepped away")
    }

    @Test("a reservation neither accepted nor released in time expires and frees its capacity")
    func expiry() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let reply = try await core.route(routeRequest("h-1")).reply
        // Made in the same moment: one accepted, one released, one re-routed by a decline; none of them expires.
        let accepted = try await core.route(routeRequest("h-2")).reply
        _ = try await core.accept(accepted.reservationID)
        _ = try await core.release(try await core.route(routeRequest("h-3")).reply.reservationID, outcome: .connected)
        let declined = try await core.route(routeRequest("h-4")).reply
        harness.clock.advance(10)
        let rerouted = try await core.decline(declined.reservationID, reason: "busy").reply
        harness.clock.advance(19.9)
        #expect(try await core.expire() == 0)
        harness.clock.advance(0.2)
        #expect(try await core.expire() == 1)
        #expect(core.list().destinations.map(\.heldReservations) == [0, 1])
        // The re-routed reservation was made 10 s later and expires 10 s later.
        harness.clock.advance(9.8)
        #expect(try await core.expire() == 0)
        harness.clock.advance(0.2)
        #expect(try await core.expire() == 1)
        #expect(try await core.explain(rerouted.handoffID).reservations.map(\.state) == [.declined, .expired])
        #expect(core.list().destinations.map(\.heldReservations) == [0, 0])
        #expect(core.list().destinations.map(\.acceptedReservations) == [1, 0])
        let failed = await #expect(throws: RPCError.self) { try await core.accept(reply.reservationID) }
        #expect(failed?.code == .failedPrecondition)
        #expect(failed?.message.contains("expired") == true)
    }

    @Test("availability: validated, counted while fresh, stale after its maximum age")
    func availability() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        var update = Baton_Routing_V1_UpdateAvailabilityRequest()
        update.destinationID = "in-house"
        update.agentsReady = 0
        update.agentsBusy = 3
        let state = try core.updateAvailability(update)
        #expect(state.freeAgents == 0 && !state.availability.stale)
        // The in-house team reports nobody free: the partner takes the handoff.
        #expect(try await core.route(routeRequest("h-1")).reply.destinationID == "partner")
        harness.clock.advance(61)
        #expect(core.list().destinations[0].availability.stale)
        #expect(try await core.route(routeRequest("h-2")).reply.destinationID == "in-house")  // own bookkeeping: 3 free
        update.agentsBusy = -1
        let negative = #expect(throws: RPCError.self) { try core.updateAvailability(update) }
        #expect(negative?.message == "agents_busy is -1; expected a count of zero or more")
        update.destinationID = "elsewhere"
        update.agentsBusy = 0
        #expect((#expect(throws: RPCError.self) { try core.updateAvailability(update) })?.code == .notFound)
    }

    @Test("decisions and open reservations survive reopening the database")
    func restart() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        var core: RouterCore? = try harness.open()
        let held = try await core!.route(routeRequest("h-1")).reply
        let accepted = try await core!.route(routeRequest("h-2")).reply
        _ = try await core!.accept(accepted.reservationID)
        core = nil
        let reopened = try harness.open()
        #expect(reopened.list().destinations[0].heldReservations == 1)
        #expect(reopened.list().destinations[0].acceptedReservations == 1)
        #expect(try await reopened.explain("h-1").decisions == [held])
        #expect(try await reopened.route(routeRequest("h-1")).reply == held)
        _ = try await reopened.release(held.reservationID, outcome: .abandoned)
        #expect(reopened.list().destinations[0].heldReservations == 0)
    }

    @Test("a shape's decision is reused while its predictions hold, its reasons stored once; a change decides afresh")
    func keptDecisions() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        func reasonSets() async throws -> Int {
            try await core.store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reason_sets") } ?? -1
        }
        // Three in-house agents: the first three handoffs all see a free agent there, so one decision serves them.
        var replies: [Baton_Routing_V1_RouteReply] = []
        for index in 1...3 {
            replies.append(try await core.route(routeRequest("h-\(index)")).reply)
        }
        #expect(replies.allSatisfy { $0.destinationID == "in-house" && $0.reasons == replies[0].reasons })
        #expect(try await reasonSets() == 1)
        // The fourth finds the in-house team full: its prediction changed, so the decision is made afresh.
        let overflow = try await core.route(routeRequest("h-4")).reply
        #expect(overflow.destinationID == "partner")
        #expect(
            overflow.reasons.first { $0.destinationIds.contains("in-house") }?.text.contains("over the 8 s maximum")
                == true
        )
        #expect(try await reasonSets() == 2)
        // Each decision reads back whole from the store, reasons included.
        for reply in replies + [overflow] {
            #expect(try await core.explain(reply.handoffID).decisions == [reply])
        }
        // The partner's agent free again: the predictions h-4 saw, so its decision is reused and nothing is stored.
        _ = try await core.release(overflow.reservationID, outcome: .connected)
        let again = try await core.route(routeRequest("h-5")).reply
        #expect(again.reasons == overflow.reasons)
        #expect(try await reasonSets() == 2)
        // Nothing changed but the minute: decided afresh, with the same reasons, stored anew.
        harness.clock.advance(60)
        _ = try await core.release(again.reservationID, outcome: .connected)
        #expect(try await core.route(routeRequest("h-6")).reply.reasons == overflow.reasons)
        #expect(try await reasonSets() == 3)
    }

    @Test("concurrent decisions that share their reasons store them once")
    func sharedReasonsStoredOnce() async throws {
        let harness = try Harness(yaml: Harness.yaml.replacingOccurrences(of: "agents: 3", with: "agents: 100"))
        defer { harness.directory.remove() }
        let core = try harness.open()
        // Every one of them finds a free in-house agent: one decision, whose reasons the first write stores and the
        // writes committed with it, or after it, reuse.
        let replies = try await routeConcurrently(core, handoffs: 64)
        #expect(Set(replies.map(\.reasons)).count == 1)
        let rows = try await core.store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reason_sets")
        }
        #expect(rows == 1)
        for reply in replies.prefix(8) {
            #expect(try await core.explain(reply.handoffID).decisions == [reply])
        }
    }

    @Test("a kept decision does not outlive the minute: a destination that closes is filtered at once")
    func keptDecisionAndClosing() async throws {
        // The clock starts at 12:00 UTC; the in-house team closes at 12:01.
        let yaml = Harness.yaml.replacingOccurrences(
            of: "    transfer: sip:in@example",
            with: """
                    transfer: sip:in@example
                    hours:
                      time_zone: UTC
                      open:
                        - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "12:01"}
                """
        )
        let harness = try Harness(yaml: yaml)
        defer { harness.directory.remove() }
        let core = try harness.open()
        #expect(try await core.route(routeRequest("h-1")).reply.destinationID == "in-house")
        harness.clock.advance(59.5)
        #expect(try await core.route(routeRequest("h-2")).reply.destinationID == "in-house")
        harness.clock.advance(1)
        let closed = try await core.route(routeRequest("h-3")).reply
        #expect(closed.destinationID == "partner")
        #expect(closed.reasons.first { $0.destinationIds.contains("in-house") }?.text == "closed now")
    }

    @Test("destinations with the same verdict, text and prediction share one reason; each appears exactly once")
    func sharedReasons() async throws {
        var yaml = "destinations:\n"
        for (id, kind, skill) in [
            ("a", "in_house", "billing"), ("d", "in_house", "care"), ("b", "partner", "billing"),
            ("e", "partner", "care"), ("c", "partner", "billing"),
        ] {
            yaml += """
                  - {id: \(id), kind: \(kind), skills: [\(skill)], transfer: "sip:\(id)@example", agents: 2,
                     average_handle_s: 300, context: live}

                """
        }
        let harness = try Harness(yaml: yaml)
        defer { harness.directory.remove() }
        let core = try harness.open()
        let reply = try await core.route(routeRequest("h-1")).reply
        #expect(reply.destinationID == "a")
        // In the order of each reason's first destination in the file.
        #expect(reply.reasons.map(\.destinationIds) == [["a"], ["d", "e"], ["b", "c"]])
        #expect(reply.reasons.map(\.verdict) == [.chosen, .filtered, .candidate])
        #expect(reply.reasons[1].text == "lacks skill billing")
        #expect(reply.reasons[2].text == "qualified; predicted 3 s" && reply.reasons[2].predictedLiveHumanMs == 3000)
        #expect(try await core.explain("h-1").decisions == [reply])

        // b now predicts differently from c: they no longer share a reason.
        var report = Baton_Routing_V1_UpdateAvailabilityRequest()
        report.destinationID = "b"
        report.agentsBusy = 2
        report.queueLength = 1
        _ = try core.updateAvailability(report)
        let second = try await core.route(routeRequest("h-2")).reply
        #expect(second.reasons.flatMap(\.destinationIds).sorted() == ["a", "b", "c", "d", "e"])
        #expect(second.reasons.first { $0.destinationIds.contains("b") }?.destinationIds == ["b"])

        // A reason stored before reasons were shared (field 1 a single destination_id) reads back as one of one.
        let legacy: [UInt8] = [0x0A, 0x01, 0x64] + [0x10, 0x01] + [0x1A, 0x0A] + Array("closed now".utf8)
        let old = try Baton_Routing_V1_Reason(serializedBytes: legacy)
        #expect(old.destinationIds == ["d"] && old.verdict == .filtered && old.text == "closed now")
    }

    @Test("the encoded reply, with its attempt appended, decodes as the reply", arguments: [1, 127, 128, 300_000])
    func encodedReply(attempt: Int) async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let decided = try await core.route(routeRequest("h-1"))
        #expect(try Baton_Routing_V1_RouteReply(serializedBytes: decided.encoded) == decided.reply)
        var reply = decided.reply
        reply.attempt = 0
        let appended = RouterStore.appendingAttempt(UInt32(attempt), to: try reply.serializedBytes())
        reply.attempt = UInt32(attempt)
        #expect(try Baton_Routing_V1_RouteReply(serializedBytes: appended) == reply)
    }

    @Test("a database written by the first schema opens: its open reservation and decision are kept")
    func migratesFirstSchema() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        // A decision and its held reservation as the first schema stored them: the reply in both rows.
        let decided: Baton_Routing_V1_RouteReply
        do {
            let core = try harness.open()
            decided = try await core.route(routeRequest("h-1")).reply
        }
        let path = harness.directory.appending("router.sqlite")
        unlink(path)
        unlink(path + "-wal")
        unlink(path + "-shm")
        let queue = try DatabaseQueue(path: path)
        try RouterStore.migrator.migrate(queue, upTo: "v1")
        try await queue.write { db in
            let reply = Data(try decided.serializedBytes() as [UInt8])
            let request = Data(try routeRequest("h-1").serializedBytes() as [UInt8])
            try db.execute(
                sql: "INSERT INTO decisions (handoff_id, attempt, decided_at, reply) VALUES ('h-1', 1, ?, ?)",
                arguments: [decided.decidedAtUnixMs, reply]
            )
            try db.execute(
                sql: """
                    INSERT INTO reservations (id, handoff_id, destination_id, state, created_at, expires_at, request,
                        reply)
                    VALUES (?, 'h-1', 'in-house', 1, ?, ?, ?, ?)
                    """,
                arguments: [
                    decided.reservationID, decided.decidedAtUnixMs, decided.reservationExpiresAtUnixMs, request,
                    reply,
                ]
            )
        }
        try queue.close()
        let reopened = try harness.open()
        #expect(reopened.list().destinations[0].heldReservations == 1)
        #expect(try await reopened.route(routeRequest("h-1")).reply == decided)
        let explained = try await reopened.explain("h-1")
        #expect(explained.decisions == [decided])
        #expect(explained.reservations.map(\.id) == [decided.reservationID])
        // Routed again after its release: the next attempt, stored the new way.
        _ = try await reopened.release(decided.reservationID, outcome: .failed)
        #expect(try await reopened.route(routeRequest("h-1")).reply.attempt == 2)
        #expect(try await reopened.explain("h-1").reservations.map(\.state) == [.released, .held])
    }
}
