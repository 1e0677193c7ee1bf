import Synchronization

/// Wakes one waiting task, or lets it wake by itself after a while: the outbox sender waits on it for the next
/// stored timeline event or for its retry interval, whichever comes first.
///
/// A ring while nobody waits is kept (one, however many rang), so the next wait returns at once and no event waits
/// for the interval. A wait that ends by its timeout leaves the bell as it was: the next wait blocks again. (An
/// `AsyncStream` raced against a sleep does not: cancelling its pending `next()` finishes the stream, and every
/// later `next()` returns at once, so the waiter spins.)
package final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: (generation: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var generation: UInt64 = 0
        /// The last wait whose timeout (or cancellation) came before it had started waiting.
        var expired: UInt64 = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Wakes the waiting task, or the next one to wait.
    package func ring() {
        let waiter = self.state.withLock { state in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil as CheckedContinuation<Void, Never>?
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    /// Returns once the bell rings (or had rung since the last wait), after `timeout`, or when the task is
    /// cancelled. One task waits at a time.
    package func wait(atMost timeout: Duration) async {
        let generation = self.state.withLock { state in
            state.generation += 1
            return state.generation
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.expire(generation)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { state in
                    precondition(state.waiter == nil, "one task waits on a Doorbell at a time")
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    if Task.isCancelled || state.expired == generation {
                        return true
                    }
                    state.waiter = (generation, continuation)
                    return false
                }
                if now {
                    continuation.resume()
                }
            }
        } onCancel: {
            self.expire(generation)
        }
    }

    /// Ends wait number `generation`, if it still waits; a later wait is not touched.
    private func expire(_ generation: UInt64) {
        let waiter = self.state.withLock { state in
            guard let waiter = state.waiter, waiter.generation == generation else {
                state.expired = generation
                return nil as CheckedContinuation<Void, Never>?
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }
}
