import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SwiftProtobuf

/// The agent's screen (`/`), the operations dashboard (`/ops`), and the API and WebSocket behind them.
///
/// | route | what |
/// |---|---|
/// | `GET /`, `GET /ops`, `GET /assets/*` | the pages, from the binary |
/// | `POST /api/session` | sign in: `{"agentId", "token"}`; sets the session cookie |
/// | `DELETE /api/session` | sign out |
/// | `GET /api/me` | the signed-in agent |
/// | `GET /ws` | WebSocket: the agent's destination's `WatchBriefs`, one `BriefUpdate` (JSON) per message |
/// | `GET /api/handoffs/{id}/brief` | GetBrief, for a handoff at the agent's destination |
/// | `POST /api/handoffs/{id}/{ack,accept,decline,connected,greeted,repeat,hand-back}` | the context API's methods |
/// | `GET /api/ops` | the dashboard's figures (supervisors) |
///
/// Every `/api` route but sign-in needs the session cookie (401 without it). A handoff that is not at the agent's
/// destination is 403, and so is a request (or a WebSocket) from another origin.
struct AgentDesk {
    let backends: Backends
    /// Who may sign in, by id; nil: there is no `agents.yaml`, and nobody can.
    let agents: [String: Agent]?
    let sessions: Sessions

    func register(on router: Router<BasicRequestContext>) {
        self.registerPages(on: router)
        router.post("/api/session") { request, _ in
            await self.signIn(request)
        }
        router.delete("/api/session") { request, _ in
            if let token = request.cookies[Sessions.cookie]?.value {
                try? await self.sessions.close(token: token)
            }
            var response = JSONReplies.json(.ok, "{}")
            response.setCookie(Self.cookie(value: "", maxAge: 0))
            return response
        }
        router.get("/api/me") { request, _ in
            do {
                return JSONReplies.json(.ok, try Self.describe(try self.caller(request)))
            } catch {
                return JSONReplies.failure(error)
            }
        }
        router.get("/ws") { request, _ in
            // A WebSocket upgrade the WebSocket router refused comes here: say why.
            do {
                _ = try self.webSocketCaller(request)
                return JSONReplies.failure(HTTPFailure(.badRequest, "GET /ws is a WebSocket; send an upgrade"))
            } catch {
                return JSONReplies.failure(error)
            }
        }
        router.get("/api/handoffs/{id}/brief") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await JSONReplies.answer(request, authenticate: self.caller) { agent, _ in
                try await self.brief(id, for: agent)
            }
        }
        self.registerActions(on: router)
        router.get("/api/ops") { request, _ in
            do {
                let agent = try self.caller(request)
                guard agent.role == .supervisor else {
                    throw HTTPFailure(.forbidden, "the dashboard is for supervisors; \(agent.id) is an agent")
                }
                return JSONReplies.json(.ok, await Dashboard(backends: self.backends).figures())
            } catch {
                return JSONReplies.failure(error)
            }
        }
    }

    /// The WebSocket: each message is one `BriefUpdate` of the agent's destination, in protobuf's JSON, or
    /// `{"status": "live"}` once the context assembler has answered. It closes (1011) when the assembler's stream
    /// ends; the page then reconnects and gets every open brief again.
    func registerWebSocket(on router: Router<BasicWebSocketRequestContext>) {
        router.ws("/ws") { request, _ in
            (try? self.webSocketCaller(request)) == nil ? .dontUpgrade : .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let agent = try? self.webSocketCaller(context.request), let destination = agent.destination
            else {
                return
            }
            // Whichever ends first (the page, or the assembler's stream) ends the other; an error ends both.
            try? await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // The page sends nothing; this ends when it goes away.
                    for try await _ in inbound {}
                }
                group.addTask {
                    let stream = try self.backends.assembler.watchBriefs(
                        .with {
                            $0.destinationID = destination
                            $0.agentID = agent.id
                        },
                        options: CallOptions(waitForReady: true)
                    )
                    let health = Grpc_Health_V1_Health.Client(self.backends.clients["context-assembler"]!)
                    _ = try await health.check(.init(), options: CallOptions(waitForReady: true))
                    try await outbound.write(.text(#"{"status":"live"}"#))
                    for try await update in stream {
                        try await outbound.write(.text(try update.jsonString(options: JSONReplies.encoding)))
                    }
                }
                try await group.next()
                group.cancelAll()
            }
            try? await outbound.close(.unexpectedServerError, reason: "the context assembler's stream ended")
        }
    }

    /// Why a WebSocket upgrade request may not go on (``GuardedWebSocketChannel``); nil: it may, or it is not
    /// for `/ws` (Hummingbird refuses those).
    func refusal(_ head: HTTPRequestHead) -> HTTPFailure? {
        guard head.uri.split(separator: "?", maxSplits: 1).first == "/ws" else {
            return nil
        }
        let credentials = Credentials(
            origin: head.headers.first(name: "Origin"),
            host: head.headers.first(name: "Host"),
            cookies: Cookies(from: head.headers["Cookie"])
        )
        do {
            _ = try self.agent(credentials, webSocket: true)
            return nil
        } catch let failure as HTTPFailure {
            return failure
        } catch {
            return HTTPFailure(.internalServerError, "\(error)")
        }
    }

    // MARK: - Pages

    private func registerPages(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            Self.asset(PackageResources.desk_html, "text/html; charset=utf-8")
        }
        router.get("/ops") { _, _ in
            Self.asset(PackageResources.ops_html, "text/html; charset=utf-8")
        }
        router.get("/assets/desk.css") { _, _ in
            Self.asset(PackageResources.desk_css, "text/css; charset=utf-8")
        }
        router.get("/assets/desk.js") { _, _ in
            Self.asset(PackageResources.desk_js, "text/javascript; charset=utf-8")
        }
        router.get("/assets/ops.js") { _, _ in
            Self.asset(PackageResources.ops_js, "text/javascript; charset=utf-8")
        }
    }

    /// The policy every page is served with: its own scripts, styles and connections only; no inline script, no
    /// frames, no plugins.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    private static func asset(_ bytes: [UInt8], _ type: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type,
                .contentSecurityPolicy: Self.contentSecurityPolicy,
                .xContentTypeOptions: "nosniff",
                HTTPField.Name("Referrer-Policy")!: "no-referrer",
                .cacheControl: "no-cache",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    // MARK: - Signing in

    private func signIn(_ request: Request) async -> Response {
        do {
            try Credentials(request).checkOrigin(required: false)
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            guard
                let object = (try? JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)))
                    as? [String: Any]
            else {
                throw HTTPFailure(
                    .badRequest,
                    "the body is not a JSON object; expected {\"agentId\": ..., \"token\": ...}"
                )
            }
            guard let id = object["agentId"] as? String, !id.isEmpty else {
                throw HTTPFailure(.badRequest, "field 'agentId': expected the agent's id from agents.yaml")
            }
            guard let token = object["token"] as? String, !token.isEmpty else {
                throw HTTPFailure(.badRequest, "field 'token': expected the agent's sign-in token")
            }
            guard let agents = self.agents else {
                throw HTTPFailure(.unauthorized, "nobody can sign in: the configuration has no agents.yaml")
            }
            // The same answer for an unknown agent as for a wrong token.
            guard let agent = agents[id], agent.signs(in: token) else {
                throw HTTPFailure(.unauthorized, "unknown agent or wrong token")
            }
            let session = try await self.sessions.open(agent: agent.id, now: Timestamp.nowUnixMs())
            var response = JSONReplies.json(.ok, try Self.describe(agent))
            response.setCookie(Self.cookie(value: session, maxAge: Int(Sessions.lifetime / 1000)))
            return response
        } catch {
            return JSONReplies.failure(error)
        }
    }

    private static func cookie(value: String, maxAge: Int) -> Cookie {
        Cookie(name: Sessions.cookie, value: value, maxAge: maxAge, path: "/", httpOnly: true, sameSite: .strict)
    }

    /// The signed-in agent of a request; 401 without a session, 403 from another origin.
    private func caller(_ request: Request) throws -> Agent {
        try self.agent(Credentials(request), webSocket: false)
    }

    /// The caller of a WebSocket: as ``caller(_:)``, and the agent must have a destination to watch.
    private func webSocketCaller(_ request: Request) throws -> Agent {
        try self.agent(Credentials(request), webSocket: true)
    }

    /// The agent a request is from, checked without waiting (``WebSocketGuard`` checks upgrades with it on the
    /// event loop). A WebSocket must come from this desk's own page (see ``Credentials/checkOrigin(required:)``).
    func agent(_ credentials: Credentials, webSocket: Bool) throws -> Agent {
        try credentials.checkOrigin(required: webSocket)
        guard let token = credentials.session, !token.isEmpty else {
            throw HTTPFailure(.unauthorized, "not signed in; sign in at / first")
        }
        guard let id = self.sessions.agent(token: token, now: Timestamp.nowUnixMs()), let agent = self.agents?[id]
        else {
            throw HTTPFailure(.unauthorized, "the session has ended; sign in again")
        }
        if webSocket, agent.destination == nil {
            throw HTTPFailure(.forbidden, "\(agent.id) has no destination in agents.yaml, so no briefs to watch")
        }
        return agent
    }

    private static func describe(_ agent: Agent) throws -> String {
        var object: [String: Any] = ["id": agent.id, "name": agent.name, "role": agent.role.rawValue]
        object["destination"] = agent.destination
        return String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
            as: UTF8.self
        )
    }

    // MARK: - Working a handoff

    /// The handoff's current brief, when it is at `agent`'s destination; 403 when it is somewhere else.
    private func brief(_ id: String, for agent: Agent) async throws -> Baton_Context_V1_Brief {
        guard let destination = agent.destination else {
            throw HTTPFailure(.forbidden, "\(agent.id) has no destination in agents.yaml")
        }
        let brief = try await self.backends.assembler.getBrief(.with { $0.handoffID = id }, options: Backends.options)
        guard brief.destinationID == destination else {
            throw HTTPFailure(.forbidden, "handoff \(id) is not at \(destination); it is not yours to see or work")
        }
        return brief
    }

    private func registerActions(on router: Router<BasicRequestContext>) {
        let assembler = self.backends.assembler
        let options = Backends.options
        self.action("ack", on: router) { (request: Baton_Context_V1_AckBriefRequest, agent, _) in
            var request = request
            request.agentID = agent.id
            return try await assembler.ackBrief(request, options: options)
        }
        self.action("accept", on: router) { (request: Baton_Context_V1_AcceptRequest, agent, _) in
            var request = request
            request.agentID = agent.id
            return try await assembler.accept(request, options: options)
        }
        self.action("decline", on: router) { (request: Baton_Context_V1_DeclineRequest, agent, brief) in
            var request = request
            request.agentID = agent.id
            request.destinationID = brief.destinationID
            return try await assembler.decline(request, options: options)
        }
        for (name, kind) in [
            ("connected", Baton_Context_V1_ReportTransferRequest.Kind.humanConnected),
            ("greeted", .humanGreeted),
        ] {
            self.action(name, on: router) { (request: Baton_Context_V1_ReportTransferRequest, _, _) in
                var request = request
                request.kind = kind
                return try await assembler.reportTransfer(request, options: options)
            }
        }
        self.action("repeat", on: router) { (request: Baton_Context_V1_ReportRepeatRequest, agent, _) in
            var request = request
            request.agentID = agent.id
            return try await assembler.reportRepeat(request, options: options)
        }
        self.action("hand-back", on: router) { (request: Baton_Context_V1_HandBackRequest, _, _) in
            try await assembler.handBack(request, options: options)
        }
    }

    /// `POST /api/handoffs/{id}/<name>`: the body (optional) is the method's request in JSON, without the handoff
    /// id, which is the path's; the desk adds the agent's id and checks the handoff is at their destination.
    private func action<Body: HandoffRequest>(
        _ name: String,
        on router: Router<BasicRequestContext>,
        _ call: @escaping @Sendable (Body, Agent, Baton_Context_V1_Brief) async throws -> Baton_Context_V1_Handoff
    ) {
        router.post("/api/handoffs/{id}/\(name)") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await JSONReplies.answer(request, authenticate: self.caller) { agent, body in
                var message = body.readableBytes == 0 ? Body() : try JSONReplies.decode(Body.self, body)
                try JSONReplies.match(&message.handoffID, id, "handoffId")
                let brief = try await self.brief(id, for: agent)
                return try await call(message, agent, brief)
            }
        }
    }
}

/// A context API request about one handoff.
protocol HandoffRequest: SwiftProtobuf.Message {
    var handoffID: String { get set }
}

extension Baton_Context_V1_AckBriefRequest: HandoffRequest {}
extension Baton_Context_V1_AcceptRequest: HandoffRequest {}
extension Baton_Context_V1_DeclineRequest: HandoffRequest {}
extension Baton_Context_V1_ReportTransferRequest: HandoffRequest {}
extension Baton_Context_V1_ReportRepeatRequest: HandoffRequest {}
extension Baton_Context_V1_HandBackRequest: HandoffRequest {}

/// What the desk's checks read of a request: its `Origin`, its `Host`, and the session cookie.
struct Credentials {
    var origin: String?
    var host: String?
    var session: String?

    init(origin: String?, host: String?, cookies: Cookies) {
        self.origin = origin
        self.host = host
        self.session = cookies[Sessions.cookie]?.value
    }

    init(_ request: Request) {
        self.init(origin: request.headers[.origin], host: request.head.authority, cookies: request.cookies)
    }

    /// A browser names the page a request comes from in `Origin`, which must then be this desk (`http(s)://` and
    /// the `Host` header). `required` (a WebSocket): it must be there too. Browsers always send it with a
    /// WebSocket, which the same-origin policy does not cover, so that this is what keeps another site's page
    /// from opening one with the agent's cookie.
    func checkOrigin(required: Bool) throws {
        guard let origin = self.origin else {
            if required {
                throw HTTPFailure(.forbidden, "no Origin header; the desk's WebSocket is for its own pages")
            }
            return
        }
        let host = self.host ?? ""
        guard !host.isEmpty, origin == "http://\(host)" || origin == "https://\(host)" else {
            throw HTTPFailure(.forbidden, "the request comes from \(origin), not from this desk (\(host))")
        }
    }
}
