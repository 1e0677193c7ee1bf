import BatonProto
import BatonRPC
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwiftProtobuf

/// The JSON API for integrators that can only call webhooks: each route is one method of the context API, with
/// protobuf's JSON mapping for the bodies and replies, and the wire status mapped to the usual HTTP one.
///
/// | route | method |
/// |---|---|
/// | `POST /v1/calls` | OpenCall (body: `OpenCallRequest`) |
/// | `POST /v1/calls/{id}/events` | Record (body: an `Event`; its `callId` is the path's, or absent) |
/// | `POST /v1/handoffs/{id}/transfer-events` | ReportTransfer (body: `ReportTransferRequest` without `handoffId`) |
/// | `GET /v1/handoffs/{id}/brief?token=...` | GetBrief by the X-Baton-Handoff token, which must be this handoff's |
/// | `POST /v1/calls/{id}/close` | CloseCall (body optional: `{"atUnixMs": ...}`) |
struct IntegratorAPI {
    let backends: Backends
    /// The bearer token every request must carry; nil: the API is off.
    let token: String?

    /// The largest body taken.
    static let maxBody = 256 * 1024

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/calls") { request, _ in
            try await self.answer(request) { body in
                let open = try Self.decode(Baton_Context_V1_OpenCallRequest.self, body)
                return try await self.backends.assembler.openCall(open, options: Backends.options)
            }
        }
        router.post("/v1/calls/{id}/events") { request, context in
            try await self.answer(request) { body in
                let id = try context.parameters.require("id")
                var event = try Self.decode(Baton_Context_V1_Event.self, body)
                try Self.match(&event.callID, id, "callId")
                return try await self.backends.assembler.record(.with { $0.event = event }, options: Backends.options)
            }
        }
        router.post("/v1/handoffs/{id}/transfer-events") { request, context in
            try await self.answer(request) { body in
                let id = try context.parameters.require("id")
                var report = try Self.decode(Baton_Context_V1_ReportTransferRequest.self, body)
                try Self.match(&report.handoffID, id, "handoffId")
                return try await self.backends.assembler.reportTransfer(report, options: Backends.options)
            }
        }
        router.get("/v1/handoffs/{id}/brief") { request, context in
            try await self.answer(request) { _ in
                let id = try context.parameters.require("id")
                guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else {
                    throw RPCError.invalidArgument(
                        "the query has no token; expected ?token= with the X-Baton-Handoff header's value"
                    )
                }
                let brief = try await self.backends.assembler.getBrief(
                    .with { $0.token = token },
                    options: Backends.options
                )
                guard brief.handoffID == id else {
                    // The same answer as an unknown token: a token says nothing about other handoffs.
                    throw RPCError.notFound("no brief for that token")
                }
                return brief
            }
        }
        router.post("/v1/calls/{id}/close") { request, context in
            try await self.answer(request) { body in
                let id = try context.parameters.require("id")
                var close =
                    body.readableBytes == 0
                    ? Baton_Context_V1_CloseCallRequest()
                    : try Self.decode(Baton_Context_V1_CloseCallRequest.self, body)
                try Self.match(&close.callID, id, "callId")
                return try await self.backends.assembler.closeCall(close, options: Backends.options)
            }
        }
    }

    /// Checks the bearer token, reads the body, runs `body`, and answers its reply as JSON, or the error with its
    /// HTTP status and `{"code": ..., "message": ...}`.
    private func answer(
        _ request: Request,
        _ handle: (ByteBuffer) async throws -> some SwiftProtobuf.Message
    ) async throws -> Response {
        do {
            try self.authenticate(request)
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: Self.maxBody)
            } catch {
                throw HTTPFailure(.contentTooLarge, "the body is over \(Self.maxBody / 1024) KiB")
            }
            let reply = try await handle(body)
            return Self.json(.ok, try reply.jsonString(options: Self.encoding))
        } catch let failure as HTTPFailure {
            return Self.failure(failure.status, code: failure.code, failure.message)
        } catch let error as RPCError {
            return Self.failure(Self.status(error.code), code: error.code.description, error.message)
        } catch {
            return Self.failure(.internalServerError, code: "INTERNAL", "\(error)")
        }
    }

    private func authenticate(_ request: Request) throws {
        guard let token = self.token else {
            throw HTTPFailure(
                .unauthorized,
                "the HTTP API is off: start desk with BATON_DESK_API_TOKEN set, then send Authorization: Bearer <it>"
            )
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw HTTPFailure(.unauthorized, "no bearer token; expected the header Authorization: Bearer <token>")
        }
        guard Self.same(Array(header.utf8.dropFirst(7)), Array(token.utf8)) else {
            throw HTTPFailure(.unauthorized, "the bearer token is not the one configured")
        }
    }

    /// Compares in time that depends only on the lengths, so that the reply's timing says nothing of the token.
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
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

    static func failure(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        let object = ["code": code, "message": message]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        var response = Self.json(status, String(decoding: data, as: UTF8.self))
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
        case .contentTooLarge: "OUT_OF_RANGE"
        default: "INVALID_ARGUMENT"
        }
    }
}
