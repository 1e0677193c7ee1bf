import BatonProto
import BatonRuntime
import BatonTestKit
import Foundation
import HummingbirdBcrypt
import SwiftProtobuf
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The agent screen's API, sessions and WebSocket over real HTTP, against `desk` in front of the four processes:
/// who may sign in, what each agent may see and do, and what is refused with 401 or 403. (The page itself runs in a
/// real browser in Tests/Browser.)
@Suite("desk: agents")
struct AgentDeskTests {
    /// a1 works desk-a (in house, where payments go first), b1 works desk-b, and boss supervises.
    static let agents: [(id: String, destination: String?, role: String)] = [
        ("a1", "desk-a", "agent"), ("b1", "desk-b", "agent"), ("boss", nil, "supervisor"),
    ]

    static func token(_ agent: String) -> String { "\(agent)-sign-in-token" }

    /// A desk with agents.yaml, until `body` ends.
    static func withAgents<T>(
        _ body: (_ harness: BatonHarness, _ desk: Desk) async throws -> T
    ) async throws -> T {
        try await BatonHarness.with { harness in
            var lines = ["agents:"]
            for agent in Self.agents {
                lines += [
                    "  - id: \(agent.id)", "    name: Agent \(agent.id)", "    role: \(agent.role)",
                    "    token_hash: \"\(Bcrypt.hash(Self.token(agent.id), cost: 4))\"",
                ]
                if let destination = agent.destination {
                    lines.append("    destination: \(destination)")
                }
            }
            try BatonHarness.write(
                lines.joined(separator: "\n") + "\n",
                to: harness.directory.appending("config/agents.yaml")
            )
            return try await DeskTests.withDesk(harness) { base in
                try await body(harness, Desk(base: base))
            }
        }
    }

    /// HTTP to the desk, with no cookie store: a test sends exactly the cookie and headers it names.
    struct Desk {
        let base: String
        let session: URLSession = {
            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpCookieStorage = nil
            configuration.httpShouldSetCookies = false
            return URLSession(configuration: configuration)
        }()

        var port: Int { Int(self.base.split(separator: ":").last!)! }

        func request(
            _ method: String,
            _ path: String,
            body: String? = nil,
            cookie: String? = nil,
            origin: String? = nil
        ) async throws -> DeskTests.Reply {
            var request = URLRequest(url: URL(string: self.base + path)!)
            request.httpMethod = method
            request.timeoutInterval = 30
            if let body {
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            if let cookie {
                request.setValue(cookie, forHTTPHeaderField: "Cookie")
            }
            if let origin {
                request.setValue(origin, forHTTPHeaderField: "Origin")
            }
            let (data, response) = try await self.session.data(for: request)
            let http = response as? HTTPURLResponse
            var headers: [String: String] = [:]
            for (key, value) in http?.allHeaderFields ?? [:] {
                headers["\(key)".lowercased()] = "\(value)"
            }
            return DeskTests.Reply(
                status: http?.statusCode ?? 0,
                headers: headers,
                body: String(decoding: data, as: UTF8.self)
            )
        }

        /// Signs `agent` in; returns the `Cookie` header value of the session.
        func signIn(_ agent: String) async throws -> String {
            let reply = try await self.request(
                "POST",
                "/api/session",
                body: #"{"agentId": "\#(agent)", "token": "\#(AgentDeskTests.token(agent))"}"#
            )
            guard reply.status == 200, let setCookie = reply.headers["set-cookie"],
                let pair = setCookie.split(separator: ";").first
            else {
                throw TestKitError("sign-in of \(agent): \(reply.status) \(reply.body)")
            }
            return String(pair)
        }

        /// Sends a WebSocket upgrade for /ws over a raw connection; returns what came back once `until` holds.
        func webSocket(
            cookie: String?,
            origin: String?,
            until done: @escaping @Sendable (String) -> Bool
        ) async throws -> (text: String, connection: RawConnection) {
            let connection = try await RawConnection.connect(host: "127.0.0.1", port: self.port)
            var head = [
                "GET /ws HTTP/1.1", "Host: 127.0.0.1:\(self.port)", "Connection: Upgrade", "Upgrade: websocket",
                "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ]
            if let cookie {
                head.append("Cookie: \(cookie)")
            }
            if let origin {
                head.append("Origin: \(origin)")
            }
            try await connection.send(Array((head.joined(separator: "\r\n") + "\r\n\r\n").utf8))
            return (await connection.text(until: done), connection)
        }

        var origin: String { self.base }
    }

    /// Drives a payment call to its gate through the assembler; returns the handoff (routed to desk-a).
    static func paymentHandoff(_ harness: BatonHarness, call: String) async throws -> Baton_Context_V1_Plan {
        let assembler = harness.assembler
        _ = try await assembler.openCall(
            .with {
                $0.callID = call
                $0.workflowID = "billing-support"
                $0.caller.phoneNumber = "+353871234567"
            }
        )
        let events: [(String, (inout Baton_Context_V1_Event) -> Void)] = [
            (
                "e1",
                {
                    $0.slotCaptured = .with {
                        $0.name = "identity.name"
                        $0.value = "Aoife Byrne"
                    }
                }
            ),
            ("e2", { $0.callerTurn = .with { $0.text = "<script>alert(1)</script> my account is AC-1" } }),
            ("e3", { $0.intentDetected = .with { $0.intent = "make_payment" } }),
        ]
        var plan = Baton_Context_V1_Plan()
        for (id, fill) in events {
            var event = Baton_Context_V1_Event()
            event.callID = call
            event.eventID = id
            fill(&event)
            let reply = try await assembler.record(.with { $0.event = event })
            if reply.hasPlan {
                plan = reply.plan
            }
        }
        #expect(plan.destinationID == "desk-a", "\(plan)")
        return plan
    }

    @Test(
        "signing in: a wrong token or an unknown agent is 401 alike, a body without agentId is 400, and a session is an HttpOnly SameSite=Strict cookie that signing out ends"
    )
    func signingIn() async throws {
        try await Self.withAgents { _, desk in
            let wrong = try await desk.request("POST", "/api/session", body: #"{"agentId": "a1", "token": "nope"}"#)
            let unknown = try await desk.request("POST", "/api/session", body: #"{"agentId": "zed", "token": "nope"}"#)
            #expect(wrong.status == 401 && unknown.status == 401 && wrong.body == unknown.body, "\(wrong.body)")
            #expect(wrong.headers["set-cookie"] == nil)
            let missing = try await desk.request("POST", "/api/session", body: #"{"token": "x"}"#)
            #expect(missing.status == 400 && missing.body.contains("agentId"), "\(missing.body)")

            let signedIn = try await desk.request(
                "POST",
                "/api/session",
                body: #"{"agentId": "a1", "token": "\#(Self.token("a1"))"}"#
            )
            #expect(signedIn.status == 200 && signedIn.json["destination"] as? String == "desk-a", "\(signedIn.body)")
            let cookie = signedIn.headers["set-cookie"] ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"))
            let session = String(cookie.split(separator: ";").first ?? "")
            #expect(try await desk.request("GET", "/api/me", cookie: session).json["id"] as? String == "a1")
            #expect(try await desk.request("GET", "/api/me").status == 401)
            #expect(
                try await desk.request("GET", "/api/me", cookie: "baton_session=" + String(repeating: "0", count: 64))
                    .status == 401
            )
            _ = try await desk.request("DELETE", "/api/session", cookie: session)
            #expect(try await desk.request("GET", "/api/me", cookie: session).status == 401, "signed out")
        }
    }

    @Test(
        "an agent sees and works only their own destination's handoffs: another's is 403, and so is a request from another origin"
    )
    func ownDestinationOnly() async throws {
        try await Self.withAgents { harness, desk in
            let plan = try await Self.paymentHandoff(harness, call: "own-1")
            let a1 = try await desk.signIn("a1")
            let b1 = try await desk.signIn("b1")
            let path = "/api/handoffs/\(plan.handoffID)"

            let mine = try await desk.request("GET", path + "/brief", cookie: a1)
            #expect(mine.status == 200 && mine.json["handoffId"] as? String == plan.handoffID, "\(mine.body)")
            let theirs = try await desk.request("GET", path + "/brief", cookie: b1)
            #expect(theirs.status == 403 && !theirs.body.contains("Aoife"), "\(theirs.body)")
            let acceptTheirs = try await desk.request("POST", path + "/accept", cookie: b1)
            #expect(acceptTheirs.status == 403, "\(acceptTheirs.body)")
            #expect(try await desk.request("GET", path + "/brief").status == 401)

            let foreign = try await desk.request("POST", path + "/accept", cookie: a1, origin: "http://evil.example")
            #expect(foreign.status == 403 && foreign.body.contains("evil.example"), "\(foreign.body)")
            let bad = try await desk.request("POST", path + "/hand-back", body: #"{"outcome": 7}"#, cookie: a1)
            #expect(bad.status == 400, "\(bad.body)")
            let accepted = try await desk.request("POST", path + "/accept", body: "{}", cookie: a1, origin: desk.origin)
            #expect(accepted.status == 200 && accepted.json["state"] as? String == "STATE_ACCEPTED", "\(accepted.body)")
            let acked = try await desk.request(
                "POST",
                path + "/ack",
                body: #"{"revision": \#(plan.brief.revision)}"#,
                cookie: a1
            )
            #expect(acked.status == 200 && acked.json["displayedAtUnixMs"] != nil, "\(acked.body)")

            let ops = try await desk.request("GET", "/api/ops", cookie: a1)
            #expect(ops.status == 403, "an agent's dashboard: \(ops.body)")
            let boss = try await desk.signIn("boss")
            let figures = try await desk.request("GET", "/api/ops", cookie: boss)
            #expect(figures.status == 200, "\(figures.body)")
            #expect((figures.json["summary"] as? [String: Any]) != nil && figures.json["destinations"] != nil)
        }
    }

    @Test(
        "the WebSocket: 403 from another origin or without one, 401 without a session, and otherwise the destination's open briefs"
    )
    func webSocket() async throws {
        try await Self.withAgents { harness, desk in
            let plan = try await Self.paymentHandoff(harness, call: "ws-1")
            let a1 = try await desk.signIn("a1")
            let status = { @Sendable (text: String) in text.contains("\r\n\r\n") }

            let foreign = try await desk.webSocket(cookie: a1, origin: "http://evil.example", until: status)
            #expect(foreign.text.hasPrefix("HTTP/1.1 403") && foreign.text.contains("evil.example"), "\(foreign.text)")
            let noOrigin = try await desk.webSocket(cookie: a1, origin: nil, until: status)
            #expect(noOrigin.text.hasPrefix("HTTP/1.1 403"), "\(noOrigin.text)")
            let noSession = try await desk.webSocket(cookie: nil, origin: desk.origin, until: status)
            #expect(noSession.text.hasPrefix("HTTP/1.1 401") && noSession.text.contains("UNAUTHENTICATED"))
            let boss = try await desk.signIn("boss")
            let noDestination = try await desk.webSocket(cookie: boss, origin: desk.origin, until: status)
            #expect(noDestination.text.hasPrefix("HTTP/1.1 403"), "a supervisor without a destination")
            for refused in [foreign, noOrigin, noSession, noDestination] {
                #expect(await refused.connection.waitForClose(), "a refused upgrade's connection is closed")
            }

            let open = try await desk.webSocket(cookie: a1, origin: desk.origin) { $0.contains(plan.handoffID) }
            #expect(open.text.hasPrefix("HTTP/1.1 101"), "\(open.text)")
            #expect(open.text.contains(#"{"status":"live"}"#) && open.text.contains("KIND_OPEN"), "\(open.text)")
            #expect(open.text.contains("\"whisper\""), "the whisper comes with the brief")
            await open.connection.close()
        }
    }

    @Test("the pages: a strict Content-Security-Policy, no inline script, and the assets from the binary")
    func pages() async throws {
        try await Self.withAgents { _, desk in
            for path in ["/", "/ops"] {
                let page = try await desk.request("GET", path)
                #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
                let policy = page.headers["content-security-policy"] ?? ""
                #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "\(policy)")
                #expect(!policy.contains("unsafe"), "\(policy)")
                #expect(page.headers["x-content-type-options"] == "nosniff")
                // Every script is a file of the desk's own: none inline.
                let scripts = page.body.components(separatedBy: "<script").dropFirst()
                #expect(!scripts.isEmpty && scripts.allSatisfy { $0.hasPrefix(#" src="/assets/"#) }, "\(path)")
            }
            for (asset, type) in [
                ("desk.js", "text/javascript"), ("ops.js", "text/javascript"), ("desk.css", "text/css"),
            ] {
                let reply = try await desk.request("GET", "/assets/" + asset)
                #expect(reply.status == 200 && reply.headers["content-type"]?.hasPrefix(type) == true, "\(asset)")
            }
            let script = try await desk.request("GET", "/assets/desk.js")
            #expect(!script.body.contains("innerHTML") && !script.body.contains("insertAdjacentHTML"), "text only")
        }
    }

    @Test("an invalid agents.yaml stops desk at start, naming the file, line and column")
    func invalidAgents() async throws {
        try await BatonHarness.with { harness in
            let file = harness.directory.appending("config/agents.yaml")
            try BatonHarness.write(
                "agents:\n  - id: a1\n    name: A\n    role: boss\n    token_hash: plain\n",
                to: file
            )
            let desk = try ServiceProcess.start(
                "desk",
                environment: ["BATON_DESK_HTTP_PORT": "0"],
                workingDirectory: harness.directory.path,
                logPath: harness.directory.appending("desk.log")
            )
            defer { desk.stop() }
            #expect(await desk.waitForExit() != nil, "desk exits")
            #expect(desk.output.contains("agents.yaml:4:"), "\(desk.output)")
            #expect(desk.output.contains("role 'boss' is not one of agent, supervisor"), "\(desk.output)")
            #expect(desk.output.contains("batonctl hash-token"), "\(desk.output)")
        }
    }
}
