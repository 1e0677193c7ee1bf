public import BatonRPC
import Synchronization

/// What a process makes in ``BatonProcess/run(methods:services:stoppingFirst:prepare:)``'s `prepare`, after it owns its socket:
/// a second instance is refused before it opens any store. The methods are built before that, so they reach the
/// value through here; a call that arrives while it is still being made is UNAVAILABLE, which clients retry.
public final class Prepared<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let what: String

    /// `what` names the value in the UNAVAILABLE message: "the event store".
    public init(_ what: String) {
        self.what = what
    }

    public func set(_ value: Value) {
        self.value.withLock { $0 = value }
    }

    /// The value, or nil while it is still being made.
    public var ready: Value? {
        self.value.withLock { $0 }
    }

    /// The value; `UNAVAILABLE` while it is still being made.
    public func get() throws(RPCError) -> Value {
        guard let value = self.value.withLock({ $0 }) else {
            throw RPCError.unavailable("still starting: \(self.what) is being opened; retry")
        }
        return value
    }
}
