/// A gRPC canonical status code, as carried in `baton.rpc.v1.Status.code` (docs/PROTOCOL.md, "Frames").
///
/// A struct rather than an enum so that a code this version does not know still round-trips.
public struct RPCStatusCode: Hashable, Sendable, CustomStringConvertible {
    /// The code's number on the wire.
    public let rawValue: UInt32

    /// Wraps a code number received on the wire; any value is kept, known or not.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public static let ok = Self(rawValue: 0)
    public static let cancelled = Self(rawValue: 1)
    public static let unknown = Self(rawValue: 2)
    public static let invalidArgument = Self(rawValue: 3)
    public static let deadlineExceeded = Self(rawValue: 4)
    public static let notFound = Self(rawValue: 5)
    public static let alreadyExists = Self(rawValue: 6)
    public static let permissionDenied = Self(rawValue: 7)
    public static let resourceExhausted = Self(rawValue: 8)
    public static let failedPrecondition = Self(rawValue: 9)
    public static let aborted = Self(rawValue: 10)
    public static let outOfRange = Self(rawValue: 11)
    public static let unimplemented = Self(rawValue: 12)
    public static let `internal` = Self(rawValue: 13)
    public static let unavailable = Self(rawValue: 14)
    public static let dataLoss = Self(rawValue: 15)
    public static let unauthenticated = Self(rawValue: 16)

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The code's gRPC name, `INVALID_ARGUMENT`, or `CODE_<n>` for a code outside gRPC's list.
    public var description: String {
        self.rawValue < Self.names.count ? Self.names[Int(self.rawValue)] : "CODE_\(self.rawValue)"
    }
}
