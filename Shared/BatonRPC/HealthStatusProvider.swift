import NIOConcurrencyHelpers
import SwiftProtobuf

/// The serving status a process reports on `grpc.health.v1.Health` (docs/PROTOCOL.md, "Health").
///
/// The empty service name is the process as a whole. A process sets `SERVING` once it can do its work (store
/// open, configuration loaded); the server sets every service to `NOT_SERVING` when it starts to drain.
public final class HealthStatusProvider: Sendable {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus
    private typealias Response = Grpc_Health_V1_HealthCheckResponse

    private struct State {
        var statuses: [String: Status] = ["": .notServing]
        var watchers: [Int: AsyncStream<Void>.Continuation] = [:]
        var nextWatcher = 0
        var draining = false
    }

    private let state = NIOLockedValueBox(State())

    /// A provider that reports the whole process `NOT_SERVING` until told otherwise.
    public init() {}

    /// Sets the status of `service` (the empty name is the whole process) and tells every watcher.
    /// Once the server drains, nothing can set a service back to `SERVING`.
    public func setStatus(_ status: Status, forService service: String = "") {
        let watchers = self.state.withLockedValue { state -> [AsyncStream<Void>.Continuation] in
            guard !(state.draining && status == .serving), state.statuses[service] != status else {
                return []
            }
            state.statuses[service] = status
            return Array(state.watchers.values)
        }
        for watcher in watchers {
            watcher.yield()
        }
    }

    /// The status of `service`, or nil when it is not known.
    public func status(ofService service: String) -> Status? {
        self.state.withLockedValue { $0.statuses[service] }
    }

    /// The status of `service` (nil when unknown) and whether the server drains, read together so that a watcher
    /// that sees the drain also sees the `NOT_SERVING` it brought.
    private func snapshot(ofService service: String) -> (status: Status?, draining: Bool) {
        self.state.withLockedValue { ($0.statuses[service], $0.draining) }
    }

    /// Reports every service `NOT_SERVING`, for good: the server is shutting down.
    func enterDraining() {
        let watchers = self.state.withLockedValue { state -> [AsyncStream<Void>.Continuation] in
            state.draining = true
            for service in state.statuses.keys {
                state.statuses[service] = .notServing
            }
            return Array(state.watchers.values)
        }
        for watcher in watchers {
            watcher.yield()
        }
    }

    /// A stream that yields whenever any status changes; it ends when the caller's task is cancelled.
    func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = self.state.withLockedValue { state in
            defer { state.nextWatcher += 1 }
            state.watchers[state.nextWatcher] = continuation
            return state.nextWatcher
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    /// The `grpc.health.v1.Health` methods, answering from this provider.
    ///
    /// `Check` on an unknown service ends `NOT_FOUND`, as gRPC's does; `Watch` reports it `SERVICE_UNKNOWN` and
    /// keeps watching. `Watch` ends `UNAVAILABLE` after it has reported the drain that precedes shutdown.
    public var methods: RPCMethods {
        var methods = RPCMethods()
        methods.unary(Grpc_Health_V1_Health.Method.check) {
            (request: Grpc_Health_V1_HealthCheckRequest, _) -> Grpc_Health_V1_HealthCheckResponse in
            guard let status = self.status(ofService: request.service) else {
                throw RPCError.notFound("service '\(request.service)' is not known to this process")
            }
            return .with { $0.status = status }
        }
        methods.serverStreaming(Grpc_Health_V1_Health.Method.watch) {
            (request: Grpc_Health_V1_HealthCheckRequest, _, writer: RPCStreamWriter<Response>) in
            let changes = self.changes()
            var last: Status?
            var iterator = changes.makeAsyncIterator()
            repeat {
                let (known, draining) = self.snapshot(ofService: request.service)
                let status = known ?? .serviceUnknown
                if status != last {
                    try await writer.send(.with { $0.status = status })
                    last = status
                }
                if draining {
                    throw RPCError.unavailable("the process is shutting down")
                }
            } while await iterator.next() != nil
            throw CancellationError()
        }
        return methods
    }
}
