/// The limits docs/PROTOCOL.md fixes for every connection, in both directions.
public enum Wire {
    /// The largest frame body a peer may send: 4 MiB. A length prefix of 0 or above this closes the connection.
    public static let maxFrameLength = 4 * 1024 * 1024
    /// The most calls one connection may have open at once; a `REQUEST` beyond it ends `RESOURCE_EXHAUSTED`.
    public static let maxOpenCalls = 1024
    /// The size of the big-endian length prefix in front of every frame.
    public static let lengthPrefixSize = 4
}
