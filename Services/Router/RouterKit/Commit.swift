import BatonRPC
import Synchronization

/// The outcome of one write to the store, for the calls that must not answer before it is known: a repeated Route
/// while the first one's decision is committing, an Accept or Release of a reservation whose last change is.
///
/// It is finished once, by the call that made the write: with the decision's attempt (0 for a write that is not a
/// decision), or with the error that call answered.
final class Commit: Sendable {
    private struct State {
        var outcome: Result<UInt32, RPCError>?
        var waiters: [CheckedContinuation<UInt32, any Error>] = []
    }

    private let state = Mutex(State())

    /// Records the outcome and wakes every waiter; a second call is a programming error.
    func finish(_ outcome: Result<UInt32, RPCError>) {
        let waiters = self.state.withLock { state in
            precondition(state.outcome == nil, "a commit is finished once")
            state.outcome = outcome
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.resume(with: outcome.mapError { $0 })
        }
    }

    /// Waits for the outcome: the attempt, or the error the write's own caller got.
    func outcome() async throws -> UInt32 {
        try await withCheckedThrowingContinuation { continuation in
            let known = self.state.withLock { state -> Result<UInt32, RPCError>? in
                guard let outcome = state.outcome else {
                    state.waiters.append(continuation)
                    return nil
                }
                return outcome
            }
            if let known {
                continuation.resume(with: known.mapError { $0 })
            }
        }
    }
}
