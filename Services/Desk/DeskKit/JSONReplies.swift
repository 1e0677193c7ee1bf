import BatonRPC
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwiftProtobuf

/// JSON over HTTP for the desk's two APIs (the integrators' `/v1` and the agent screen's `/api`): protobuf's JSON
/// mapping for bodies and replies, and every refusal as `{"code": ..., "message": ...}` with the usual HTTP status.
enum JSONReplies {
    /// The largest body taken.
    static let maxBody = 256 * 1024

    /// Authenticates the request, reads its body, runs `handle`, and answers its reply as JSON, or the error with
    /// its HTTP status.
    static func answer<Caller>(
        _ request: Request,
        authenticate: (Request) async throws -> Caller,
        _ handle: (Caller, ByteBuffer) async throws -> some SwiftProtobuf.Message
    ) async -> Response {
        do {
            let caller = try await authenticate(request)
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: Self.maxBody)
            } catch {
                throw HTTPFailure(.contentTooLarge, "the body is over \(Self.maxBody / 1024) KiB")
            }
            let reply = try await handle(caller, body)
            return Self.json(.ok, try reply.jsonString(options: Self.encoding))
        } catch {
            return Self.failure(error)
        }
    }

    /// An error as the JSON refusal its kind calls for.
    static func failure(_ error: any Error) -> Response {
        switch error {
        case let failure as HTTPFailure: Self.failure(failure.status, code: failure.code, failure.message)
        case let error as RPCError: Self.failure(Self.status(error.code), code: error.code.description, error.message)
        default: Self.failure(.internalServerError, code: "INTERNAL", "\(error)")
        }
    }

    static let encoding: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.alwaysPrintEnumsAsInts = false
        return options
    }()

    /// Protobuf's JSON mapping, refusing unknown fields; the error names what was wrong.
    static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ body: ByteBuffer) throws -> M {
        let text = String(buffer: body)
        guard !text.isEmpty else {
            throw HTTPFailure(.badRequest, "the body is empty; expected a JSON \(M.protoMessageName)")
        }
        do {
            return try M(jsonString: text)
        } catch {
            let field = Self.invalidField(M.self, text).map { "field '\($0)': " } ?? ""
            throw HTTPFailure(.badRequest, "the body is not a valid JSON \(M.protoMessageName): \(field)\(error)")
        }
    }

    /// The top-level field that makes `text` fail to decode as `M`, when one alone does: protobuf's JSON errors
    /// say what was wrong (`malformedString`) but not where.
    static func invalidField<M: SwiftProtobuf.Message>(_ type: M.Type, _ text: String) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            return nil
        }
        for key in object.keys.sorted() {
            guard let single = try? JSONSerialization.data(withJSONObject: [key: object[key]!]) else {
                continue
            }
            if (try? M(jsonUTF8Data: single)) == nil {
                return key
            }
        }
        return nil
    }

    /// The id in the path is the request's: the body may leave it out, and may not name another.
    static func match(_ field: inout String, _ path: String, _ name: String) throws {
        guard field.isEmpty || field == path else {
            throw HTTPFailure(.badRequest, "\(name) is '\(field)' but the path names '\(path)'")
        }
        field = path
    }

    /// The usual HTTP status of a wire status (Google's API design guide's table).
    static func status(_ code: RPCStatusCode) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument, .failedPrecondition, .outOfRange: .badRequest
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        case .notFound: .notFound
        case .alreadyExists, .aborted: .conflict
        case .resourceExhausted: .tooManyRequests
        case .cancelled: HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        case .deadlineExceeded: .gatewayTimeout
        default: .internalServerError
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n"))
        )
    }

    /// A refusal's body: `{"code": ..., "message": ...}`.
    static func refusal(code: String, _ message: String) -> String {
        let object = ["code": code, "message": message]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func failure(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        var response = Self.json(status, Self.refusal(code: code, message))
        if status == .unauthorized {
            response.headers[.wwwAuthenticate] = "Bearer realm=\"baton\""
        }
        return response
    }
}

/// An HTTP-level refusal (authentication, body), before any method is called.
struct HTTPFailure: Error {
    let status: HTTPResponse.Status
    let message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    var code: String {
        switch self.status {
        case .unauthorized: "UNAUTHENTICATED"
        case .forbidden: "PERMISSION_DENIED"
        case .notFound: "NOT_FOUND"
        case .internalServerError: "INTERNAL"
        case .contentTooLarge: "OUT_OF_RANGE"
        default: "INVALID_ARGUMENT"
        }
    }
}
