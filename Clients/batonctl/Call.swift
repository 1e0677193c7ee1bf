import ArgumentParser
import BatonRPC
import Logging
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any method of any Baton process, like grpcurl: the request and reply as protobuf JSON.",
        discussion: """
            The request is the JSON argument, or standard input when it is omitted and not a terminal, or {}.
            A unary reply prints as one JSON object; a streaming reply prints one JSON object per line until it
            ends or batonctl is interrupted. Exit status: 0 OK, 1 the call failed (its status is printed), 2 the
            command was wrong (unknown process or method, malformed JSON, an unknown field).
            """
    )

    @OptionGroup var connection: Connection
    @Argument(help: "The process: router, supervisor, ...") var process: String
    @Argument(help: "The method: Check, Health/Check, grpc.health.v1.Health.Check or its full path.")
    var method: String?
    @Argument(help: "The request as protobuf JSON.") var json: String?
    @Flag(help: "List the process's methods with their request and reply types.") var list = false
    @Option(help: "Seconds before the call gives up (unary calls only; 0 for none).") var timeout: Double = 30

    func run() async throws {
        if self.list {
            return Self.listMethods(of: self.process)
        }
        guard let name = self.method else {
            Output.error("name a method, or use --list to see the methods of \(self.process)")
            throw ExitCode(2)
        }
        guard let method = MethodCatalog.find(name, of: self.process) else {
            Output.error("\(self.process) has no method '\(name)'; batonctl call \(self.process) --list shows them")
            throw ExitCode(2)
        }
        let json = self.json ?? Self.standardInput() ?? "{}"
        try await self.invoke(method, request: method.requestType, reply: method.responseType, json: json)
    }

    static func listMethods(of process: String) {
        for method in MethodCatalog.methods(of: process) {
            let stream = method.kind == .serverStreaming ? "stream " : ""
            Output.line(
                "\(method.dottedName)(\(method.requestType.protoMessageName)) returns "
                    + "(\(stream)\(method.responseType.protoMessageName))"
            )
        }
    }

    func invoke<Request: Message, Reply: Message>(
        _ method: RPCMethodInfo,
        request requestType: Request.Type,
        reply replyType: Reply.Type,
        json: String
    ) async throws {
        let request: Request
        do {
            request = try Request(jsonString: json)
        } catch JSONDecodingError.unknownField(let field) {
            Output.error("the request has an unknown field '\(field)' for \(Request.protoMessageName)")
            throw ExitCode(2)
        } catch {
            Output.error("the request is not valid JSON for \(Request.protoMessageName): \(error)")
            throw ExitCode(2)
        }
        var logger = Logger(label: "batonctl")
        logger.logLevel = .critical
        let client = RPCClient(socketPath: self.connection.socket(of: self.process), logger: logger)
        do {
            if method.kind == .serverStreaming {
                let stream = ServerStreamingMethod<Request, Reply>(path: method.path)
                for try await reply in try client.serverStream(stream, request) {
                    Output.line(try reply.jsonString())
                }
            } else {
                let options = CallOptions(timeout: self.timeout > 0 ? .milliseconds(Int64(self.timeout * 1000)) : nil)
                let unary = UnaryMethod<Request, Reply>(path: method.path)
                let reply = try await client.unary(unary, request, options: options)
                Output.line(try reply.jsonString())
            }
            await client.close()
        } catch let error as RPCError {
            await client.close()
            Output.error("\(error.code): \(error.message)")
            throw ExitCode(1)
        }
    }

    /// Standard input, when it is not a terminal.
    static func standardInput() -> String? {
        guard isatty(0) == 0 else {
            return nil
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(0, &chunk, chunk.count)
            guard count > 0 else {
                break
            }
            bytes += chunk.prefix(count)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.allSatisfy(\.isWhitespace) ? nil : text
    }
}
