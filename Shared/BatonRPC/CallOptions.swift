import NIOCore

/// How one client call behaves.
public struct CallOptions: Sendable {
    /// The call's deadline, relative to when it starts; nil for none. Sent as `timeout_ms` and enforced here too.
    public var timeout: Duration?
    /// When the server is down, wait for it (with back-off, up to the deadline) instead of failing at once with
    /// `UNAVAILABLE`.
    public var waitForReady: Bool
    /// Metadata sent with the request (`request-id`, `traceparent`, ...).
    public var metadata: [String: String]

    /// Options for a call with no deadline that fails fast while the server is down.
    public init(timeout: Duration? = nil, waitForReady: Bool = false, metadata: [String: String] = [:]) {
        self.timeout = timeout
        self.waitForReady = waitForReady
        self.metadata = metadata
    }

    /// The metadata keys a call made while serving another carries on from it.
    public static let propagatedMetadata = ["request-id", "traceparent", "tracestate"]

    /// Options for a call made while serving `context`: its deadline is what remains of the served call's (or
    /// `timeout`, when that is sooner), and it carries on the served call's `request-id`, `traceparent` and
    /// `tracestate`. A served call whose deadline has passed gives a call that fails at once with
    /// `DEADLINE_EXCEEDED`.
    public init(servingWithin context: RPCContext, timeout: Duration? = nil, waitForReady: Bool = false) {
        var deadline = timeout
        if let served = context.deadline {
            let remaining = Duration.nanoseconds(max(0, (served - NIODeadline.now()).nanoseconds))
            deadline = min(remaining, timeout ?? remaining)
        }
        var metadata: [String: String] = [:]
        for key in Self.propagatedMetadata {
            metadata[key] = context.metadata[key]
        }
        self.init(timeout: deadline, waitForReady: waitForReady, metadata: metadata)
    }

    /// `timeout` in whole milliseconds for the wire, at least 1 when set, at most `UInt32.max`.
    var timeoutMilliseconds: UInt32 {
        guard let timeout else {
            return 0
        }
        let (seconds, attoseconds) = timeout.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return UInt32(clamping: max(1, milliseconds))
    }
}
