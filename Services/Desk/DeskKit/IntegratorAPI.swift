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

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/calls") { request, _ in
            try await self.answer(request) { body in
                let open = try JSONReplies.decode(Baton_Context_V1_OpenCallRequest.self, body)
                return try await self.backends.assembler.openCall(open, options: Backends.options)
            }
        }
        router.post("/v1/calls/{id}/events") { request, context in
            try await self.answer(request) { body in
                let id = try context.parameters.require("id")
                var event = try JSONReplies.decode(Baton_Context_V1_Event.self, body)
                try JSONReplies.match(&event.callID, id, "callId")
                return try await self.backends.assembler.record(.with { $0.event = event }, options: Backends.options)
            }
        }
        router.post("/v1/handoffs/{id}/transfer-events") { request, context in
            try await self.answer(request) { body in
                let id = try context.parameters.require("id")
                var report = try JSONReplies.decode(Baton_Context_V1_ReportTransferRequest.self, body)
                try JSONReplies.match(&report.handoffID, id, "handoffId")
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
                    : try JSONReplies.decode(Baton_Context_V1_CloseCallRequest.self, body)
                try JSONReplies.match(&close.callID, id, "callId")
                return try await self.backends.assembler.closeCall(close, options: Backends.options)
            }
        }
    }

    /// Checks the bearer token, then answers as ``JSONReplies/answer(_:authenticate:_:)`` does.
    private func answer(
        _ request: Request,
        _ handle: (ByteBuffer) async throws -> some SwiftProtobuf.Message
    ) async throws -> Response {
        await JSONReplies.answer(request, authenticate: self.authenticate) { _, body in try await handle(body) }
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
}
