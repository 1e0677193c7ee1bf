import BatonProto
import SwiftProtobuf
import Synchronization

/// One lock per call, taken in arrival order: a call's events and handoff changes are applied one at a time, so
/// that a repeated event waits for the first one's outcome instead of racing it. Calls do not wait for each other.
final class SerialLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await self.acquire()
        defer { self.release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = self.state.withLock { state in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if acquired {
                continuation.resume()
            }
        }
    }

    private func release() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()  // the lock passes to it, still held
    }
}

/// The open briefs per destination and the desks watching each destination. A subscriber gets the open briefs and
/// every later update under one lock, so that nothing published in between is lost or sent before the snapshot.
final class BriefBoard: Sendable {
    private struct State {
        /// destination → handoff id → its current brief.
        var open: [String: [String: Baton_Context_V1_Brief]] = [:]
        var watchers: [String: [UInt64: AsyncStream<Baton_Context_V1_BriefUpdate>.Continuation]] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// A stream of `destination`'s updates, starting with its open briefs (kind OPEN).
    func watch(_ destination: String) -> AsyncStream<Baton_Context_V1_BriefUpdate> {
        let (stream, continuation) = AsyncStream<Baton_Context_V1_BriefUpdate>.makeStream()
        let id = self.state.withLock { state in
            for brief in (state.open[destination] ?? [:]).values.sorted(by: { $0.firedAtUnixMs < $1.firedAtUnixMs }) {
                continuation.yield(Self.update(.open, brief))
            }
            state.nextID += 1
            state.watchers[destination, default: [:]][state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers[destination]?.removeValue(forKey: id) }
        }
        return stream
    }

    /// Publishes a new brief or a revision at its destination; returns how many desks it was written to.
    @discardableResult
    func offer(_ brief: Baton_Context_V1_Brief) -> Int {
        self.state.withLock { state in
            let known = state.open[brief.destinationID]?[brief.handoffID] != nil
            state.open[brief.destinationID, default: [:]][brief.handoffID] = brief
            return Self.send(Self.update(known ? .revised : .new, brief), to: state.watchers[brief.destinationID])
        }
    }

    /// Withdraws a brief from its destination, with the reason.
    func withdraw(_ brief: Baton_Context_V1_Brief, reason: Baton_Context_V1_BriefUpdate.Reason) {
        self.state.withLock { state in
            guard state.open[brief.destinationID]?.removeValue(forKey: brief.handoffID) != nil else {
                return
            }
            var update = Self.update(.withdrawn, brief)
            update.reason = reason
            _ = Self.send(update, to: state.watchers[brief.destinationID])
        }
    }

    /// How many desks watch `destination`.
    func watching(_ destination: String) -> Int {
        self.state.withLock { $0.watchers[destination]?.count ?? 0 }
    }

    private static func update(
        _ kind: Baton_Context_V1_BriefUpdate.Kind,
        _ brief: Baton_Context_V1_Brief
    ) -> Baton_Context_V1_BriefUpdate {
        .with {
            $0.kind = kind
            $0.brief = brief
            $0.whisper = Briefing.whisper(brief)
        }
    }

    private static func send(
        _ update: Baton_Context_V1_BriefUpdate,
        to watchers: [UInt64: AsyncStream<Baton_Context_V1_BriefUpdate>.Continuation]?
    ) -> Int {
        for continuation in (watchers ?? [:]).values {
            continuation.yield(update)
        }
        return watchers?.count ?? 0
    }
}

/// The voice AIs watching their calls.
final class CallBoard: Sendable {
    private struct State {
        var watchers: [String: [UInt64: AsyncStream<Baton_Context_V1_CallUpdate>.Continuation]] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// A stream of `call`'s updates, starting with `current` when given; `current` is read under the board's lock
    /// so that no update is published between it and the subscription.
    func watch(
        _ call: String,
        current: () -> Baton_Context_V1_CallUpdate?
    ) -> AsyncStream<Baton_Context_V1_CallUpdate> {
        let (stream, continuation) = AsyncStream<Baton_Context_V1_CallUpdate>.makeStream()
        let id = self.state.withLock { state in
            if let update = current() {
                continuation.yield(update)
                if update.kind == .callClosed {
                    continuation.finish()
                }
            }
            state.nextID += 1
            state.watchers[call, default: [:]][state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers[call]?.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ update: Baton_Context_V1_CallUpdate) {
        let ended = self.state.withLock { state -> [AsyncStream<Baton_Context_V1_CallUpdate>.Continuation] in
            let watchers = Array((state.watchers[update.callID] ?? [:]).values)
            for continuation in watchers {
                continuation.yield(update)
            }
            guard update.kind == .callClosed else {
                return []
            }
            state.watchers[update.callID] = nil
            return watchers
        }
        // Outside the lock: finishing runs each stream's onTermination, which takes the lock.
        for continuation in ended {
            continuation.finish()
        }
    }
}
