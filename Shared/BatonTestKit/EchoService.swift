public import BatonRPC
import NIOConcurrencyHelpers

/// `baton.testing.v1.Echo`, served by tests and the benchmark to exercise the RPC runtime.
///
/// It records which `Hang` calls (by `tag`) saw their task cancelled, so a test can prove that a deadline or a
/// CANCEL reached the handler.
public final class EchoService: Sendable {
    private let state = NIOLockedValueBox(
        (started: Set<String>(), cancelled: Set<String>(), delaying: 0, mostDelayingAtOnce: 0)
    )

    /// A service with no calls seen yet.
    public init() {}

    /// Whether an `Echo` or `Hang` call tagged `tag` has started.
    public func hasStarted(_ tag: String) -> Bool {
        self.state.withLockedValue { $0.started.contains(tag) }
    }

    /// Whether a `Hang` or `Expand` call tagged `tag` saw its task cancelled (or its stream ended under it).
    public func sawCancellation(_ tag: String) -> Bool {
        self.state.withLockedValue { $0.cancelled.contains(tag) }
    }

    /// The most `Echo` calls with a delay that were running at the same moment: above 1 only if the server runs
    /// the calls of a connection concurrently.
    public var mostDelayingAtOnce: Int {
        self.state.withLockedValue { $0.mostDelayingAtOnce }
    }

    /// The methods: `Echo`, `Expand` and `Hang`.
    public var methods: RPCMethods {
        var methods = RPCMethods()
        methods.unary(Baton_Testing_V1_Echo.Method.echo) {
            (request: Baton_Testing_V1_EchoRequest, _) -> Baton_Testing_V1_EchoReply in
            if !request.tag.isEmpty {
                self.state.withLockedValue { _ = $0.started.insert(request.tag) }
            }
            if request.delayMs > 0 {
                self.state.withLockedValue {
                    $0.delaying += 1
                    $0.mostDelayingAtOnce = max($0.mostDelayingAtOnce, $0.delaying)
                }
                defer { self.state.withLockedValue { $0.delaying -= 1 } }
                try await Task.sleep(for: .milliseconds(request.delayMs))
            }
            var reply = Baton_Testing_V1_EchoReply()
            reply.text = request.text
            reply.data = request.data
            return reply
        }
        methods.serverStreaming(Baton_Testing_V1_Echo.Method.expand) {
            (request: Baton_Testing_V1_EchoRequest, _, writer: RPCStreamWriter<Baton_Testing_V1_EchoReply>) in
            do {
                for index in 0..<request.count {
                    var reply = Baton_Testing_V1_EchoReply()
                    reply.text = request.text
                    reply.index = index
                    try await writer.send(reply)
                }
            } catch {
                self.state.withLockedValue { _ = $0.cancelled.insert(request.tag) }
                throw error
            }
        }
        methods.unary(Baton_Testing_V1_Echo.Method.hang) {
            (request: Baton_Testing_V1_EchoRequest, _) -> Baton_Testing_V1_EchoReply in
            self.state.withLockedValue { _ = $0.started.insert(request.tag) }
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                self.state.withLockedValue { _ = $0.cancelled.insert(request.tag) }
                throw error
            }
            return Baton_Testing_V1_EchoReply()
        }
        return methods
    }
}
