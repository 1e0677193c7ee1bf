/// The error a call ends with: a status code and a sentence for a person.
///
/// Handlers throw it (or any ``RPCErrorConvertible``) to choose the status the client sees; the client
/// library throws it for every call that does not end `OK`.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The status code carried on the wire.
    public var code: RPCStatusCode
    /// What was wrong and, where it applies, which field or value.
    public var message: String

    /// An error with the given code and message.
    public init(code: RPCStatusCode, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(self.code): \(self.message)"
    }

    /// A field or value failed validation; the message names it and says what was expected.
    public static func invalidArgument(_ message: String) -> Self {
        Self(code: .invalidArgument, message: message)
    }

    /// The thing asked for does not exist; the message names it.
    public static func notFound(_ message: String) -> Self {
        Self(code: .notFound, message: message)
    }

    /// The peer or a dependency cannot be reached now; trying again later may work.
    public static func unavailable(_ message: String) -> Self {
        Self(code: .unavailable, message: message)
    }

    /// The call ran past its deadline.
    public static func deadlineExceeded(_ message: String) -> Self {
        Self(code: .deadlineExceeded, message: message)
    }

    /// The call was cancelled before it finished.
    public static func cancelled(_ message: String) -> Self {
        Self(code: .cancelled, message: message)
    }
}

/// A domain error that knows which status code and message it should reach the client as.
///
/// Errors that are neither ``RPCError`` nor convertible become `INTERNAL` "internal error", and their
/// cause is logged on the server, never sent to the client.
public protocol RPCErrorConvertible: Error {
    /// The status the client should see for this error.
    var rpcError: RPCError { get }
}
