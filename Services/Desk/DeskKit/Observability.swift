import BatonProto
import BatonRPC
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// `/healthz` (the desk runs), `/readyz` (the processes it answers from do too) and `/metrics` (the metrics
/// collector's Prometheus text, then the desk's own figures).
struct Observability {
    let backends: Backends
    let figures: DeskFigures

    func register(on router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            Self.text(.ok, "ok\n")
        }
        router.get("/readyz") { _, _ in
            var down: [String] = []
            for name in Backends.required {
                let health = Grpc_Health_V1_Health.Client(self.backends.clients[name]!)
                let reply = try? await health.check(.init(), options: CallOptions(timeout: .seconds(2)))
                if reply?.status != .serving {
                    down.append("\(name): \(reply.map { "\($0.status)" } ?? "no answer")")
                }
            }
            return down.isEmpty
                ? Self.text(.ok, "ready\n")
                : Self.text(.serviceUnavailable, "not ready: " + down.joined(separator: "; ") + "\n")
        }
        router.get("/metrics") { _, _ in
            var text = ""
            var contentType = "text/plain; version=0.0.4; charset=utf-8"
            do {
                let export = try await self.backends.metrics.export(.init(), options: Backends.options)
                text = export.text
                if !export.contentType.isEmpty {
                    contentType = export.contentType
                }
                self.figures.scraped(ok: true)
            } catch {
                self.figures.scraped(ok: false)
            }
            text += self.figures.prometheus()
            return Response(
                status: .ok,
                headers: [.contentType: contentType],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text))
            )
        }
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }
}

/// The desk's own figures: requests by route and status class, and whether the collector answered the last scrape.
final class DeskFigures: RouterMiddleware, Sendable {
    typealias Context = BasicRequestContext

    private struct Counts {
        var requests: [String: UInt64] = [:]
        var collectorUp = 0
    }

    private let counts = Mutex(Counts())

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let route = Self.route(request.uri.path)
        do {
            let response = try await next(request, context)
            self.count(route, response.status.code)
            return response
        } catch let error as HTTPError {
            self.count(route, error.status.code)
            throw error
        }
    }

    private func count(_ route: String, _ status: Int) {
        let key = "route=\"\(route)\",code=\"\(status / 100)xx\""
        self.counts.withLock { $0.requests[key, default: 0] += 1 }
    }

    func scraped(ok: Bool) {
        self.counts.withLock { $0.collectorUp = ok ? 1 : 0 }
    }

    /// The routes the desk serves, as they are counted: ids left out, so that the labels stay few, and a path
    /// of any other shape counted as `other`, so that nothing a client sends reaches the Prometheus text.
    static let routes = [
        "/healthz", "/readyz", "/metrics", "/v1/calls", "/v1/calls/{id}/events", "/v1/calls/{id}/close",
        "/v1/handoffs/{id}/transfer-events", "/v1/handoffs/{id}/brief",
    ]

    /// The route a path belongs to (see ``routes``).
    static func route(_ path: String) -> String {
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.count == 4, parts[0] == "v1" {
            parts[2] = "{id}"
        }
        let route = "/" + parts.joined(separator: "/")
        return Self.routes.contains(route) ? route : "other"
    }

    func prometheus() -> String {
        let counts = self.counts.withLock { $0 }
        var lines = [
            "# HELP baton_desk_http_requests_total HTTP requests the desk answered, by route and status class.",
            "# TYPE baton_desk_http_requests_total counter",
        ]
        for (labels, count) in counts.requests.sorted(by: { $0.key < $1.key }) {
            lines.append("baton_desk_http_requests_total{\(labels)} \(count)")
        }
        lines += [
            "# HELP baton_desk_collector_up Whether the metrics collector answered this scrape (1) or not (0).",
            "# TYPE baton_desk_collector_up gauge",
            "baton_desk_collector_up \(counts.collectorUp)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
