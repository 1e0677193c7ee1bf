import BatonRuntime
import BatonTestKit
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `desk` for real, in front of the four processes: its health, its Prometheus text and the JSON API, over HTTP.
@Suite("desk")
struct DeskTests {
    static let token = "test-token-0123456789abcdef"

    /// A desk on a free port in front of `harness`'s processes, until `body` ends.
    static func withDesk<T>(
        _ harness: BatonHarness,
        token: String? = Self.token,
        _ body: (_ base: String) async throws -> T
    ) async throws -> T {
        let port = try Self.freePort()
        var environment = ["BATON_DESK_HTTP_PORT": "\(port)"]
        environment["BATON_DESK_API_TOKEN"] = token
        let desk = try ServiceProcess.start(
            "desk",
            environment: environment,
            workingDirectory: harness.directory.path,
            logPath: harness.directory.appending("desk.log")
        )
        defer { desk.stop() }
        let base = "http://127.0.0.1:\(port)"
        let up = await eventually { (try? await Self.http("GET", base + "/healthz"))?.status == 200 }
        guard up else {
            throw TestKitError("desk did not answer /healthz: \(desk.output)")
        }
        return try await body(base)
    }

    /// A port nothing listens on now: bound, read and given back.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            throw TestKitError("cannot find a free port: \(String(cString: strerror(errno)))")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:]
        }
    }

    static func http(
        _ method: String,
        _ url: String,
        body: String? = nil,
        token: String? = nil
    ) async throws -> Reply {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http?.allHeaderFields ?? [:] {
            headers["\(key)".lowercased()] = "\(value)"
        }
        return Reply(status: http?.statusCode ?? 0, headers: headers, body: String(decoding: data, as: UTF8.self))
    }

    @Test("/healthz, /readyz, and /metrics with the collector's figures and the desk's own, as Prometheus text")
    func observability() async throws {
        try await BatonHarness.with { harness in
            try await Self.withDesk(harness) { base in
                #expect(try await Self.http("GET", base + "/healthz").status == 200)
                let ready = try await Self.http("GET", base + "/readyz")
                #expect(ready.status == 200, "\(ready.body)")
                let metrics = try await Self.http("GET", base + "/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(metrics.body.contains("# TYPE baton_handoffs_total counter"), "the collector's text")
                #expect(metrics.body.contains("baton_desk_collector_up 1"))
                #expect(metrics.body.contains("baton_desk_http_requests_total{route=\"/readyz\",code=\"2xx\"} 1"))
                // A path of the client's choosing is counted as `other`: nothing it sends reaches the text.
                _ = try await Self.http("GET", base + "/v1/%22%7D%20evil/x/y")
                let after = try await Self.http("GET", base + "/metrics")
                #expect(after.body.contains("route=\"other\",code=\"4xx\"} 1") && !after.body.contains("evil"))
                await harness.kill("metrics-collector")
                let notReady = try await Self.http("GET", base + "/readyz")
                #expect(notReady.status == 503 && notReady.body.contains("metrics-collector"), "\(notReady.body)")
                // The text as a real Prometheus reads it (promtool is Debian's prometheus package, which
                // scripts/install-deps.sh --test installs).
                let scraped = harness.directory.appending("metrics.txt")
                try BatonHarness.write(metrics.body, to: scraped)
                let promtool = try await ServiceProcess.run(
                    path: "/bin/sh",
                    arguments: ["-c", "promtool check metrics < '\(scraped)'"],
                    in: harness.directory
                )
                #expect(promtool.status == 0, "promtool: \(promtool.output)")
                let partial = try await Self.http("GET", base + "/metrics")
                #expect(partial.status == 200 && partial.body.contains("baton_desk_collector_up 0"))
            }
        }
    }

    @Test("the JSON API runs a call from OpenCall to CloseCall: the payment gate's plan, the brief by its token")
    func wholeCall() async throws {
        try await BatonHarness.with { harness in
            try await Self.withDesk(harness) { base in
                let opened = try await Self.http(
                    "POST",
                    base + "/v1/calls",
                    body:
                        #"{"callId": "web-1", "workflowId": "billing-support", "caller": {"phoneNumber": "+353871234567"}}"#,
                    token: Self.token
                )
                #expect(opened.status == 200, "\(opened.body)")
                #expect(opened.json["callId"] as? String == "web-1")
                let events = [
                    #"{"eventId": "e1", "slotCaptured": {"name": "identity.name", "value": "Aoife Byrne", "confirmed": true}}"#,
                    #"{"eventId": "e2", "slotCaptured": {"name": "account.id", "value": "AC-1234-5678", "confirmed": true}}"#,
                    #"{"eventId": "e3", "identityVerified": {"method": "knowledge_questions"}}"#,
                    #"{"eventId": "e4", "slotCaptured": {"name": "card.last4", "value": "1111"}}"#,
                ]
                for event in events {
                    let reply = try await Self.http(
                        "POST",
                        base + "/v1/calls/web-1/events",
                        body: event,
                        token: Self.token
                    )
                    #expect(
                        reply.status == 200 && reply.json["outcome"] as? String == "OUTCOME_CONTINUE",
                        "\(reply.body)"
                    )
                }
                let gate = try await Self.http(
                    "POST",
                    base + "/v1/calls/web-1/events",
                    body: #"{"eventId": "e5", "intentDetected": {"intent": "make_payment"}}"#,
                    token: Self.token
                )
                #expect(gate.json["outcome"] as? String == "OUTCOME_HANDOFF", "\(gate.body)")
                let plan = gate.json["plan"] as? [String: Any] ?? [:]
                let handoff = plan["handoffId"] as? String ?? ""
                let token = (plan["sipHeaders"] as? [String: String])?["X-Baton-Handoff"] ?? ""
                #expect(!handoff.isEmpty && !token.isEmpty, "\(gate.body)")

                let brief = try await Self.http(
                    "GET",
                    base + "/v1/handoffs/\(handoff)/brief?token=\(token)",
                    token: Self.token
                )
                #expect(brief.status == 200, "\(brief.body)")
                #expect(brief.body.contains("AC-1234-5678") && brief.json["handoffId"] as? String == handoff)
                let guessed = try await Self.http(
                    "GET",
                    base + "/v1/handoffs/\(handoff)/brief?token=nope",
                    token: Self.token
                )
                #expect(guessed.status == 404 && guessed.json["code"] as? String == "NOT_FOUND", "\(guessed.body)")
                let noToken = try await Self.http("GET", base + "/v1/handoffs/\(handoff)/brief", token: Self.token)
                #expect(noToken.status == 400 && noToken.body.contains("token"), "\(noToken.body)")

                let started = try await Self.http(
                    "POST",
                    base + "/v1/handoffs/\(handoff)/transfer-events",
                    body: #"{"kind": "KIND_TRANSFER_STARTED"}"#,
                    token: Self.token
                )
                #expect(started.status == 200, "\(started.body)")
                let closed = try await Self.http("POST", base + "/v1/calls/web-1/close", token: Self.token)
                #expect(closed.status == 200 && closed.json["closedAtUnixMs"] != nil, "\(closed.body)")
                let late = try await Self.http(
                    "POST",
                    base + "/v1/calls/web-1/events",
                    body: #"{"eventId": "e6", "aiTurn": {"text": "still there?"}}"#,
                    token: Self.token
                )
                #expect(late.status == 400 && late.json["code"] as? String == "INVALID_ARGUMENT", "\(late.body)")
            }
        }
    }

    @Test("bad input is 400 naming what is wrong; no token, a wrong one, or none configured is 401")
    func refusals() async throws {
        try await BatonHarness.with { harness in
            try await Self.withDesk(harness) { base in
                let open = #"{"callId": "web-2", "workflowId": "billing-support"}"#
                let anonymous = try await Self.http("POST", base + "/v1/calls", body: open)
                #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"] != nil, "\(anonymous.body)")
                let wrong = try await Self.http("POST", base + "/v1/calls", body: open, token: "not-the-token-at-all")
                #expect(wrong.status == 401 && wrong.json["code"] as? String == "UNAUTHENTICATED")
                let unknownField = try await Self.http(
                    "POST",
                    base + "/v1/calls",
                    body: #"{"callId": "web-2", "workflowID": "billing-support"}"#,
                    token: Self.token
                )
                #expect(unknownField.status == 400 && unknownField.body.contains("workflowID"), "\(unknownField.body)")
                let wrongType = try await Self.http(
                    "POST",
                    base + "/v1/calls",
                    body: #"{"callId": "web-2", "workflowId": 7}"#,
                    token: Self.token
                )
                #expect(wrongType.status == 400 && wrongType.body.contains("field 'workflowId'"), "\(wrongType.body)")
                let notJSON = try await Self.http("POST", base + "/v1/calls", body: "{", token: Self.token)
                #expect(notJSON.status == 400 && notJSON.body.contains("OpenCallRequest"), "\(notJSON.body)")
                let unknownWorkflow = try await Self.http(
                    "POST",
                    base + "/v1/calls",
                    body: #"{"callId": "web-2", "workflowId": "nope"}"#,
                    token: Self.token
                )
                #expect(unknownWorkflow.status == 404 && unknownWorkflow.body.contains("billing-support"))
                let mismatch = try await Self.http(
                    "POST",
                    base + "/v1/calls/web-2/events",
                    body: #"{"eventId": "e1", "callId": "other", "aiTurn": {"text": "hi"}}"#,
                    token: Self.token
                )
                #expect(mismatch.status == 400 && mismatch.body.contains("callId"), "\(mismatch.body)")
            }
            try await Self.withDesk(harness, token: nil) { base in
                let off = try await Self.http("POST", base + "/v1/calls", body: "{}", token: Self.token)
                #expect(off.status == 401 && off.body.contains("BATON_DESK_API_TOKEN"), "\(off.body)")
            }
        }
    }
}
