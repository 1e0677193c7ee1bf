import BatonProto
import BatonRPC
import BatonTestKit
import Dispatch
import SwiftProtobuf
import Testing

@Suite("Where handlers run")
struct ExecutorTests {
    /// A handler that blocks its thread until `release` is signalled (20 s at most, so that a broken runtime fails
    /// the test instead of hanging it).
    static func blocking(
        _ release: DispatchSemaphore
    ) -> @Sendable (Baton_Testing_V1_EchoRequest, RPCContext) -> Baton_Testing_V1_EchoReply {
        { _, _ in
            let released = release.wait(timeout: .now() + .seconds(20)) == .success
            return .with { $0.text = released ? "slow done" : "slow timed out" }
        }
    }

    @Test("a slow handler on the concurrency pool does not delay a fast one on the same connection")
    func slowHandlerOffTheLoop() async throws {
        let release = DispatchSemaphore(value: 0)
        var methods = RPCMethods()
        methods.unary(Baton_Testing_V1_Echo.Method.hang, on: .concurrencyPool, Self.blocking(release))
        methods.unary(Baton_Testing_V1_Echo.Method.echo) { request, _ in .with { $0.text = request.text } }
        try await withServer(methods) { client, _ in
            let echo = Baton_Testing_V1_Echo.Client(client)
            // Every call shares the client's one connection, and so the server's one connection handler and loop.
            async let slow = echo.hang(.with { $0.text = "slow" })
            // The fast call is answered while the slow one still blocks its thread: were the slow handler on the
            // loop, the fast reply could not be written until `release` (which only comes after it).
            for index in 0..<20 {
                let reply = try await echo.echo(.with { $0.text = "fast \(index)" })
                #expect(reply.text == "fast \(index)")
            }
            release.signal()
            #expect(try await slow.text == "slow done")
        }
    }

    @Test("a call made while serving another carries on its remaining deadline, request-id and traceparent")
    func callOptionsCarryTheServedCall() async throws {
        var methods = RPCMethods()
        methods.unary(Baton_Testing_V1_Echo.Method.echo) { _, context in
            let options = CallOptions(servingWithin: context)
            let milliseconds =
                options.timeout.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 }
                ?? -1
            return .with {
                $0.text = [
                    options.metadata["request-id"] ?? "-", options.metadata["traceparent"] ?? "-",
                    options.metadata["other"] ?? "-",
                    milliseconds > 30_000 && milliseconds <= 60_000 ? "deadline" : "\(milliseconds)",
                ].joined(separator: " ")
            }
        }
        try await withServer(methods) { client, _ in
            let reply = try await Baton_Testing_V1_Echo.Client(client).echo(
                options: CallOptions(
                    timeout: .seconds(60),
                    metadata: ["request-id": "r-7", "traceparent": "00-abc-def-01", "other": "not carried"]
                )
            )
            #expect(reply.text == "r-7 00-abc-def-01 - deadline")
            let shorter = try await Baton_Testing_V1_Echo.Client(client).echo(options: CallOptions())
            #expect(shorter.text == "- - - -1", "no deadline served, none carried on")
        }
    }
}
