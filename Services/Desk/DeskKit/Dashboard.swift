import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import SwiftProtobuf

/// The operations dashboard's figures (`GET /api/ops`), asked of the other processes at once. One JSON object:
///
/// - `summary`, `byDestination`, `byWorkflow`: the metrics collector's `Summary` of the last hour;
/// - `handoffs`: its `ListHandoffs` of the last hour (the latest 1000), for the histogram and the handoffs in
///   progress;
/// - `destinations`: the router's `ListDestinations`;
/// - `processes`: the supervisor's `Status`;
/// - `errors`: for each part that could not be had, why (that part is then `null`).
struct Dashboard {
    let backends: Backends

    static let window: UInt32 = 3600

    func figures() async -> String {
        let options = CallOptions(timeout: .seconds(5))
        let metrics = self.backends.metrics
        async let summary = Self.part("summary") {
            try await metrics.summary(.with { $0.windowS = Self.window }, options: options)
        }
        async let byDestination = Self.part("byDestination") {
            try await metrics.summary(
                .with {
                    $0.windowS = Self.window
                    $0.groupBy = [.destination]
                },
                options: options
            )
        }
        async let byWorkflow = Self.part("byWorkflow") {
            try await metrics.summary(
                .with {
                    $0.windowS = Self.window
                    $0.groupBy = [.workflow]
                },
                options: options
            )
        }
        async let handoffs = Self.part("handoffs") {
            try await metrics.listHandoffs(
                .with {
                    $0.windowS = Self.window
                    $0.limit = 1000
                },
                options: options
            )
        }
        async let destinations = Self.part("destinations") {
            try await self.backends.router.listDestinations(.init(), options: options)
        }
        async let processes = Self.part("processes") {
            try await self.backends.supervisor.status(.init(), options: options)
        }
        let parts = await [summary, byDestination, byWorkflow, handoffs, destinations, processes]
        var fields = parts.map { "\"\($0.name)\":\($0.json ?? "null")" }
        let errors = parts.compactMap { part in part.error.map { "\"\(part.name)\":\(Self.quoted($0))" } }
        fields.append("\"errors\":{\(errors.joined(separator: ","))}")
        fields.append("\"computedAtUnixMs\":\(Timestamp.nowUnixMs())")
        return "{" + fields.joined(separator: ",") + "}"
    }

    private struct Part: Sendable {
        let name: String
        var json: String?
        var error: String?
    }

    private static func part(
        _ name: String,
        _ ask: @Sendable () async throws -> some SwiftProtobuf.Message
    ) async -> Part {
        do {
            return Part(name: name, json: try await ask().jsonString(options: JSONReplies.encoding))
        } catch let error as RPCError {
            return Part(name: name, error: "\(error.code): \(error.message)")
        } catch {
            return Part(name: name, error: "\(error)")
        }
    }

    /// `text` as a JSON string.
    static func quoted(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed])
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "\"?\""
    }
}
