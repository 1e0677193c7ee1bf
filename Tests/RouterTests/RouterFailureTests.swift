import BatonProto
import BatonRPC
import BatonTestKit
import Foundation
import GRDB
import Testing

@testable import RouterKit

/// A second connection to the router's database that holds its write lock, so that the router's writes wait, and
/// can install a trigger that makes them fail: a store that is slow, and then broken, for real.
final class StoreBlocker: Sendable {
    private let queue: DatabaseQueue

    init(_ path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.allowsUnsafeTransactions = true  // hold() leaves a transaction open on purpose
        self.queue = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Takes the write lock: the router's next commit waits until ``release(breaking:)``.
    func hold() throws {
        try self.queue.inDatabase { try $0.execute(sql: "BEGIN IMMEDIATE") }
    }

    /// Lets the router's writes go on; with `breaking`, first installs triggers that make every write of
    /// `tables` fail.
    func release(breaking tables: [String] = []) throws {
        try self.queue.inDatabase { db in
            for table in tables {
                for operation in ["INSERT", "UPDATE"] {
                    try db.execute(
                        sql: """
                            CREATE TRIGGER fail_\(operation)_\(table) BEFORE \(operation) ON \(table)
                            BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END
                            """
                    )
                }
            }
            try db.execute(sql: "COMMIT")
        }
    }

    /// Makes every write of `tables` fail, from now on.
    func breakWrites(to tables: [String]) throws {
        try self.hold()
        try self.release(breaking: tables)
    }

    /// Heals the store: the failing triggers go.
    func heal() throws {
        try self.queue.inDatabase { db in
            for name in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'") {
                try db.execute(sql: "DROP TRIGGER \(name)")
            }
        }
    }
}

@Suite("Router changes against a slow or failing store")
struct RouterFailureTests {
    func held(_ core: RouterCore) -> (held: UInt32, accepted: UInt32) {
        let destination = core.list().destinations[0]
        return (destination.heldReservations, destination.acceptedReservations)
    }

    /// Routes handoff h-1 while the store's write lock is held, then routes it again while the first Route waits
    /// for its write, and lets the store go on with `release`: the two Routes' outcomes.
    func routeTwiceWhileCommitting(
        _ core: RouterCore,
        _ blocker: StoreBlocker,
        release: () throws -> Void
    ) async throws -> [Task<Baton_Routing_V1_RouteReply, any Error>] {
        try blocker.hold()
        let first = Task { try await core.route(routeRequest("h-1")).reply }
        #expect(await eventually { self.held(core).held == 1 }, "the first Route reserved, and waits for its write")
        let second = Task { try await core.route(routeRequest("h-1")).reply }
        try await Task.sleep(for: .milliseconds(50))
        try release()
        return [first, second]
    }

    @Test("a repeated Route while the first is committing waits for it and answers the same decision, attempt 1")
    func repeatedRouteWaits() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let blocker = try StoreBlocker(harness.directory.appending("router.sqlite"))
        let routes = try await self.routeTwiceWhileCommitting(core, blocker) { try blocker.release() }
        let (a, b) = (try await routes[0].value, try await routes[1].value)
        #expect(a.attempt == 1 && b == a, "the repeat answers exactly what the first stored")
        #expect(try await core.explain("h-1").decisions.count == 1)
    }

    @Test("when the first Route's write fails, its repeat fails too, and nothing stays reserved")
    func repeatedRouteSharesTheFailure() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let blocker = try StoreBlocker(harness.directory.appending("router.sqlite"))
        let routes = try await self.routeTwiceWhileCommitting(core, blocker) {
            try blocker.release(breaking: ["decisions"])
        }
        for task in routes {
            let error = await #expect(throws: RPCError.self) { try await task.value }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains("fire") == false, "the store's own message stays in the log")
        }
        #expect(self.held(core).held == 0, "the reservation was undone")
        try blocker.heal()
        #expect(try await core.route(routeRequest("h-1")).reply.attempt == 1, "a retry decides afresh, attempt 1")
    }

    @Test("Accept, Release, Decline and expiry each undo themselves when their write fails, and work once it heals")
    func everyChangeUndoesItsFailure() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let blocker = try StoreBlocker(harness.directory.appending("router.sqlite"))
        let accepted = try await core.route(routeRequest("h-accept")).reply
        let released = try await core.route(routeRequest("h-release")).reply
        let declined = try await core.route(routeRequest("h-decline")).reply
        _ = try await core.route(routeRequest("h-expire"))
        #expect(self.held(core) == (3, 0), "three held in-house (the fourth overflowed to the partner)")
        try blocker.breakWrites(to: ["reservations", "decisions"])

        let changes: [(String, @Sendable () async throws -> Void)] = [
            ("accept", { @Sendable in _ = try await core.accept(accepted.reservationID) }),
            ("release", { @Sendable in _ = try await core.release(released.reservationID, outcome: .connected) }),
            ("decline", { @Sendable in _ = try await core.decline(declined.reservationID, reason: "busy") }),
        ]
        for (what, change) in changes {
            let error = await #expect(throws: RPCError.self, "\(what)") { try await change() }
            #expect(error?.code == .unavailable, "\(what)")
        }
        harness.clock.advance(31)
        await #expect(throws: RPCError.self) { try await core.expire() }
        let listed = core.list().destinations.flatMap(\.reservations)
        #expect(listed.count == 4 && listed.allSatisfy { $0.state == .held }, "every change was undone")

        try blocker.heal()
        #expect(try await core.accept(accepted.reservationID).state == .accepted)
        #expect(try await core.release(released.reservationID, outcome: .connected).state == .released)
        let rerouted = try await core.decline(declined.reservationID, reason: "busy").reply
        #expect(rerouted.outcome == .routed && rerouted.destinationID != declined.destinationID)
        #expect(try await core.expire() == 1, "the one still held past its time; the rerouted reservation is new")
    }

    @Test("a second Release while the first is committing waits, then says the reservation is released")
    func concurrentReleaseWaits() async throws {
        let harness = try Harness()
        defer { harness.directory.remove() }
        let core = try harness.open()
        let blocker = try StoreBlocker(harness.directory.appending("router.sqlite"))
        let reply = try await core.route(routeRequest("h-1")).reply
        try blocker.hold()
        let first = Task { try await core.release(reply.reservationID, outcome: .connected) }
        #expect(await eventually { self.held(core).held == 0 })
        let second = Task { try await core.release(reply.reservationID, outcome: .connected) }
        try await Task.sleep(for: .milliseconds(50))
        try blocker.release()
        #expect(try await first.value.state == .released)
        let error = await #expect(throws: RPCError.self) { try await second.value }
        #expect(error?.code == .failedPrecondition && error?.message.contains("released already") == true)
    }
}
