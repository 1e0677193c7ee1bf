import BatonProto
import BatonRPC
import BatonStore
import Foundation
import GRDB
import Logging
import Synchronization

/// How much of the stored history is in memory: the calls that read figures wait here until every handoff their
/// window can count is.
///
/// The history is read newest first, by each handoff's latest event. Once every handoff whose latest event is at
/// or after T is in memory, so is every handoff that started at or after T (none starts after its latest event),
/// and a window from T on can be answered.
final class LoadGate: Sendable {
    private struct State {
        /// Every handoff whose latest stored event is at or after this is in memory.
        var since = Int64.max
        var outcome: Result<Void, RPCError>?
        var waiters: [(since: Int64, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    private let state = Mutex(State())

    /// Records that every handoff whose latest event is at or after `since` is in memory, and lets through the
    /// waiters whose window that covers.
    func advance(to since: Int64) {
        let ready = self.state.withLock { state in
            state.since = min(state.since, since)
            let threshold = state.since
            let ready = state.waiters.filter { $0.since >= threshold }
            state.waiters.removeAll { $0.since >= threshold }
            return ready
        }
        for waiter in ready {
            waiter.continuation.resume()
        }
    }

    /// The whole history is in memory (or could not be read: `outcome` is the failure). Every waiter is let
    /// through or fails; later calls to `wait` answer the same at once, except that windows already in memory
    /// are still answered after a failure.
    func open(_ outcome: Result<Void, RPCError>) {
        let waiters = self.state.withLock { state in
            guard state.outcome == nil else {
                return [(since: Int64, continuation: CheckedContinuation<Void, any Error>)]()
            }
            state.outcome = outcome
            if case .success = outcome {
                state.since = Int64.min
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.continuation.resume(with: outcome.mapError { $0 })
        }
    }

    /// How many calls wait here now.
    var waiting: Int {
        self.state.withLock { $0.waiters.count }
    }

    /// Whether the whole history is in memory.
    var complete: Bool {
        self.state.withLock { state in
            if case .success = state.outcome {
                return true
            }
            return false
        }
    }

    /// Returns once every handoff that started at or after `since` is in memory (by default: the whole
    /// history); throws the load's failure when that cannot happen.
    func wait(since: Int64 = Int64.min) async throws {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = self.state.withLock { state -> Result<Void, RPCError>? in
                if state.since <= since {
                    return .success(())
                }
                if let outcome = state.outcome {
                    return outcome
                }
                state.waiters.append((since, continuation))
                return nil
            }
            if let outcome {
                continuation.resume(with: outcome.mapError { $0 })
            }
        }
    }
}

/// Reading the stored history into memory at start, and pruning what is older than the retention window.
extension MetricsCore {
    /// Starts reading the stored events into memory, on one of the store's reader connections, and returns as
    /// soon as that read's snapshot is taken: events recorded from then on are merged as they commit, and the
    /// history the read sees is added newest handoff first, in batches, each opening ``loaded`` a little further
    /// back. Calls that record need not wait; a call that reads a recent window waits only for that window.
    /// Handoffs whose latest event is before the retention window are not read at all: they are never counted.
    /// `batch` and `afterBatch` (called on the reading thread after each batch but the last) are for tests.
    func beginLoading(batch: Int = MetricsCore.loadBatch, afterBatch: (@Sendable () -> Void)? = nil) async throws {
        let started = ContinuousClock.now
        let logger = self.logger
        let cutoff = self.retainedSince(self.now())
        let batchSize = batch
        try await withCheckedThrowingContinuation { (snapshot: CheckedContinuation<Void, any Error>) in
            self.store.pool.asyncRead { database in
                var batch: [String: Timeline] = [:]
                var batchEvents = 0
                var events = 0
                var handoffs = 0
                var snapshotTaken = false
                do {
                    let db = try database.get()
                    // The read goes by time, and the events sit by handoff: map the file and cache more of the
                    // tree, so that each handoff's lookup costs no read call and few page loads.
                    try db.execute(sql: "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536")
                    defer { try? db.execute(sql: "PRAGMA mmap_size = 0; PRAGMA cache_size = -2000") }
                    // The first read fixes the transaction's snapshot: from here on, a commit is either in it or
                    // merged live, never both.
                    _ = try Int.fetchOne(db, sql: "SELECT 1 FROM events LIMIT 1")
                    snapshotTaken = true
                    snapshot.resume()
                    let rows = try Row.fetchCursor(
                        db,
                        sql: """
                            SELECT h.handoff_id, h.last_at_ms, e.event_id, e.body
                            FROM handoffs h JOIN events e ON e.handoff_id = h.handoff_id
                            WHERE h.last_at_ms >= ?
                            ORDER BY h.last_at_ms DESC, h.handoff_id DESC
                            """,
                        arguments: [cutoff]
                    )
                    var current: (id: String, lastAt: Int64)?
                    while let row = try rows.next() {
                        let id: String = row["handoff_id"]
                        if let previous = current, previous.id != id {
                            handoffs += 1
                            // Every handoff whose latest event is after `previous`'s is complete in `batch`.
                            if batchEvents >= batchSize {
                                self.absorb(batch, through: previous.lastAt)
                                batch = [:]
                                batchEvents = 0
                                afterBatch?()
                            }
                        }
                        current = (id, row["last_at_ms"])
                        let event = try Self.event(row)
                        batch[id, default: Timeline()].merge(event)
                        batchEvents += 1
                        events += 1
                    }
                    if current != nil {
                        handoffs += 1
                    }
                } catch {
                    logger.error(
                        "metrics-collector: reading the stored events failed",
                        metadata: ["baton.error": "\(error)"]
                    )
                    self.loaded.open(.failure(RPCError.unavailable("the stored events could not be read; see the log")))
                    if !snapshotTaken {
                        snapshot.resume(throwing: error)  // the process refuses to start, saying why
                    }
                    return
                }
                self.absorb(batch, through: nil)
                logger.info(
                    "metrics-collector: stored events loaded",
                    metadata: [
                        "baton.events": "\(events)", "baton.handoffs": "\(handoffs)",
                        "baton.took": "\(ContinuousClock.now - started)",
                    ]
                )
            }
        }
    }

    /// Events read into memory before the figures of the handoffs they complete are let through.
    static let loadBatch = 20_000

    /// Adds `batch`, read from the store, to the live timelines (which hold only events committed after the read
    /// began, so that nothing is counted twice), then lets through the windows it completes: those from after
    /// `lastAt` on, or every one once the read is over (`lastAt` nil).
    private func absorb(_ batch: [String: Timeline], through lastAt: Int64?) {
        self.timelines.withLock { live in
            for (id, timeline) in batch {
                live[id, default: Timeline()].absorb(timeline)
            }
        }
        self.awaitingHistory.withLock { awaiting in
            if lastAt == nil {
                awaiting.removeAll()
            } else {
                for id in batch.keys {
                    awaiting.remove(id)
                }
            }
        }
        if let lastAt {
            self.loaded.advance(to: lastAt + 1)
        } else {
            self.loaded.open(.success(()))
        }
    }

    /// The live timelines a window from `since` on counts, once every handoff in it is in memory. A handoff
    /// recorded live whose older events are still being read could look as if it started later than it did: while
    /// one such handoff is in the window, this waits for the whole history.
    func timelines(since: Int64) async throws -> [String: Timeline] {
        try await self.loaded.wait(since: since)
        let (timelines, awaiting) = self.timelines.withLock { timelines in
            (timelines, self.awaitingHistory.withLock { $0 })
        }
        if awaiting.contains(where: { timelines[$0].map { $0.start >= since } ?? false }) {
            try await self.loaded.wait()
            return self.timelines.withLock { $0 }
        }
        return timelines
    }

    /// Deletes, durably, every handoff that started before the retention window, then forgets it; returns how
    /// many. The store goes first, so that a failed delete leaves everything as it was (and the figures never
    /// counted those handoffs anyway).
    @discardableResult
    func prune() async throws -> Int {
        guard self.retentionMs != nil else {
            return 0
        }
        try await self.loaded.wait()
        let cutoff = self.retainedSince(self.now())
        // Those never read into memory (their latest event is before the window), and those that are.
        var old = Set(
            try await self.store.pool.read { db in
                try String.fetchAll(
                    db,
                    sql: "SELECT handoff_id FROM handoffs WHERE last_at_ms < ?",
                    arguments: [cutoff]
                )
            }
        )
        old.formUnion(self.timelines.withLock { $0.filter { $0.value.start < cutoff }.map(\.key) })
        let sorted = old.sorted()
        for start in stride(from: 0, to: sorted.count, by: 1000) {
            let batch = Array(sorted[start..<min(start + 1000, sorted.count)])
            try await self.store.write { db in
                for id in batch {
                    try db.run("DELETE FROM events WHERE handoff_id = ?", [.text(id)])
                    try db.run("DELETE FROM handoffs WHERE handoff_id = ?", [.text(id)])
                }
            }
            self.timelines.withLock { timelines in
                for id in batch where timelines[id].map({ $0.start < cutoff }) ?? false {
                    timelines[id] = nil
                }
            }
        }
        if !old.isEmpty {
            self.logger.info(
                "metrics-collector: handoffs past retention pruned",
                metadata: ["baton.handoffs": "\(old.count)"]
            )
        }
        return old.count
    }
}
