import BatonProto
import BatonRPC
import BatonStore
import Foundation
import GRDB
import Logging
import Synchronization

/// A gate that opens once: the calls that read figures wait at it until the stored history is in memory.
final class LoadGate: Sendable {
    private let state = Mutex<(outcome: Result<Void, RPCError>?, waiters: [CheckedContinuation<Void, any Error>])>(
        (nil, [])
    )

    /// Lets every waiter through, or fails them all with `error`; later calls to `wait` answer the same at once.
    func open(_ outcome: Result<Void, RPCError>) {
        let waiters = self.state.withLock { state in
            guard state.outcome == nil else {
                return [CheckedContinuation<Void, any Error>]()
            }
            state.outcome = outcome
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.resume(with: outcome.mapError { $0 })
        }
    }

    /// Returns once the gate is open; throws its failure.
    func wait() async throws {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = self.state.withLock { state -> Result<Void, RPCError>? in
                if state.outcome == nil {
                    state.waiters.append(continuation)
                }
                return state.outcome
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
    /// history the read sees is added when it ends, when ``loaded`` opens. Calls that record need not wait.
    func beginLoading() async throws {
        let started = ContinuousClock.now
        let logger = self.logger
        try await withCheckedThrowingContinuation { (snapshot: CheckedContinuation<Void, any Error>) in
            self.store.pool.asyncRead { database in
                var history: [String: Timeline] = [:]
                var snapshotTaken = false
                do {
                    let db = try database.get()
                    // The first read fixes the transaction's snapshot: from here on, a commit is either in it or
                    // merged live, never both.
                    _ = try Int.fetchOne(db, sql: "SELECT 1 FROM events LIMIT 1")
                    snapshotTaken = true
                    snapshot.resume()
                    let rows = try Row.fetchCursor(db, sql: "SELECT handoff_id, event_id, body FROM events")
                    while let row = try rows.next() {
                        let event = try Self.event(row)
                        history[event.handoffID, default: Timeline()].merge(event)
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
                let events = history.values.reduce(0) { $0 + $1.events }
                self.timelines.withLock { live in
                    for (id, timeline) in history {
                        live[id, default: Timeline()].absorb(timeline)
                    }
                }
                self.loaded.open(.success(()))
                logger.info(
                    "metrics-collector: stored events loaded",
                    metadata: [
                        "baton.events": "\(events)", "baton.handoffs": "\(history.count)",
                        "baton.took": "\(ContinuousClock.now - started)",
                    ]
                )
            }
        }
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
        let old = self.timelines.withLock { $0.filter { $0.value.start < cutoff }.map(\.key) }
        for start in stride(from: 0, to: old.count, by: 1000) {
            let batch = Array(old[start..<min(start + 1000, old.count)])
            try await self.store.write { db in
                for id in batch {
                    try db.run("DELETE FROM events WHERE handoff_id = ?", [.text(id)])
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
