import BatonProto
import BatonRPC
import GateEvaluatorKit
import NIOCore
import NIOEmbedded
import RouterKit
import SupervisorKit
import SwiftProtobuf

/// One input the fuzzer mutates, and what Baton does with such an input from outside: every one must be refused
/// with an error, never crash or hang. Chosen by name (`BATON_FUZZ_HARNESS`); `scripts/fuzz.sh` lists them.
enum Harness: String, CaseIterable {
    /// Bytes on a socket: the frame decoder, then each frame's protobuf.
    case frames
    /// A workflow file.
    case workflows
    /// `destinations.yaml`.
    case destinations
    /// A Procfile.
    case procfile
    /// A `.env` file.
    case dotenv
    /// `supervisor.yaml`.
    case supervisorYAML = "supervisor-yaml"
    /// The JSON `batonctl call` takes, as every request message of every service.
    case json

    /// Runs the input through this harness; anything but a crash or a hang is a pass.
    func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .frames:
            Self.frames(bytes)
        case .workflows:
            _ = try? WorkflowFile.parse(text, file: "fuzz.yaml")
        case .destinations:
            _ = try? DestinationsFile.parse(text, file: "destinations.yaml")
        case .procfile:
            _ = try? Procfile.parse(text)
        case .dotenv:
            _ = try? DotEnv.parse(text)
        case .supervisorYAML:
            _ = try? SupervisorFile.parse(text, file: "supervisor.yaml", processes: ["router", "gate-evaluator"])
        case .json:
            for method in Self.requestTypes {
                _ = try? method.init(jsonString: text)
            }
        }
    }

    /// Every request message type batonctl can send.
    static let requestTypes: [any Message.Type] = [
        Grpc_Health_V1_Health.info, Baton_Supervisor_V1_Supervisor.info, Baton_Gates_V1_GateEvaluator.info,
        Baton_Routing_V1_Router.info, Baton_Metrics_V1_MetricsCollector.info,
    ].flatMap(\.methods).map(\.requestType)

    /// Feeds `bytes` to the server's frame decoder, as one read and then in reads of 7 bytes, and decodes every frame.
    private static func frames(_ bytes: [UInt8]) {
        for chunk in [bytes.count, 7] where chunk > 0 {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                do {
                    try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
                } catch {
                    break  // a protocol violation: the server closes the connection here
                }
                while let body = try? channel.readInbound(as: ByteBuffer.self) {
                    _ = try? Baton_Rpc_V1_Frame(serializedBytes: Array(body.readableBytesView))
                }
                offset = end
            }
            _ = try? channel.finish()
        }
    }
}
