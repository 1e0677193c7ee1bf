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
