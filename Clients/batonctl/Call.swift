import ArgumentParser
import BatonRPC
import Foundation
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
            ends or batonctl is interrupted. Exit status: 0 OK, 1 the call failed (its status is printed) or its
            reply lists problems (Reload, ValidateWorkflow), 2 the command was wrong (unknown process or method,
            malformed JSON, an unknown field).
            """
    )

    @OptionGroup var connection: Connection
    @Argument(help: "The process: router, supervisor, ...") var process: String
    @Argument(help: "The method: Check, Health/Check, grpc.health.v1.Health.Check or its full path.")
    var method: String?
    @Argument(help: "The request as protobuf JSON.") var json: String?
    @Flag(help: "List the process's methods with their request and reply types.") var list = false
    @Flag(help: "Describe the method's request: its fields, their types and what they mean.") var describe = false
    @Option(help: "Seconds before the call gives up (unary calls only; 0 for none).") var timeout: Double = 30

    func run() async throws {
        if self.list {
            try self.requireKnownProcess()
            return Self.listMethods(of: self.process)
        }
        guard let name = self.method else {
            Output.error("name a method, or use --list to see the methods of \(self.process)")
            throw ExitCode(2)
        }
        try self.requireKnownProcess()
        guard let method = MethodCatalog.find(name, of: self.process) else {
            Output.error("\(self.process) has no method '\(name)'; batonctl call \(self.process) --list shows them")
            throw ExitCode(2)
        }
        if self.describe {
            Output.line(MethodCatalog.describe(method, of: self.process))
            return
        }
        let json = self.json ?? Self.standardInput() ?? "{}"
        try await self.invoke(method, request: method.requestType, reply: method.responseType, json: json)
    }

    /// A process batonctl knows, or one with a socket in the run directory (a Procfile may add its own).
    func requireKnownProcess() throws {
        guard MethodCatalog.services[self.process] == nil,
            SocketFile.identity(of: self.connection.socket(of: self.process)) == nil
        else {
            return
        }
        Output.error(
            "there is no process '\(self.process)'; the processes are "
                + MethodCatalog.services.keys.sorted().joined(separator: ", ")
        )
        throw ExitCode(2)
    }

    static func listMethods(of process: String) {
        for method in MethodCatalog.methods(of: process) {
            Output.line(MethodCatalog.signature(method))
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
        } catch {
            Output.error(RequestJSON.explain(error, json: json, for: Request.self))
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
                let text = try reply.jsonString()
                Output.line(text)
                if Self.listsProblems(text) {
                    await client.close()
                    Output.error("the reply lists problems")
                    throw ExitCode(1)
                }
            }
            await client.close()
        } catch let error as RPCError {
            await client.close()
            Output.error("\(error.code): \(error.message)")
            throw ExitCode(1)
        }
    }

    /// Whether a reply says that what it was asked to check or load has problems (Reload, ValidateWorkflow).
    static func listsProblems(_ json: String) -> Bool {
        guard let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let problems = object["problems"] as? [Any]
        else {
            return false
        }
        return !problems.isEmpty
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

/// Why a request's JSON was refused, in words: the field, what it expected and what it got. SwiftProtobuf's errors
/// name neither (`malformedString`), so each top-level field is decoded on its own to find the one at fault.
enum RequestJSON {
    static func explain<Request: Message>(_ error: any Error, json: String, for type: Request.Type) -> String {
        let message = Request.protoMessageName
        if case JSONDecodingError.unknownField(let field) = error {
            return "the request has an unknown field '\(field)' for \(message)"
        }
        guard let data = json.data(using: .utf8),
            let parsed = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else {
            return "the request is not JSON; expected a JSON object ({...}) for \(message)"
        }
        guard let object = parsed as? [String: Any] else {
            return "the request is \(Self.kind(of: parsed)); expected a JSON object ({...}) for \(message)"
        }
        for key in object.keys.sorted() {
            guard let value = object[key],
                let one = try? JSONSerialization.data(withJSONObject: [key: value], options: [.fragmentsAllowed]),
                let text = String(data: one, encoding: .utf8)
            else {
                continue
            }
            do {
                _ = try Request(jsonString: text)
            } catch {
                if value is [Any] || value is [String: Any] {
                    return "field '\(key)' (\(Self.kind(of: value))) of \(message): inside it, \(Self.words(error))"
                }
                return "field '\(key)' of \(message): \(Self.words(error)), not \(Self.kind(of: value))"
            }
        }
        return "the request is not valid for \(message): \(Self.words(error))"
    }

    /// What the decoder expected, in words.
    static func words(_ error: any Error) -> String {
        switch error as? JSONDecodingError {
        case .malformedString: "expected a string"
        case .malformedNumber, .leadingZero: "expected a number"
        case .numberRange: "the number is out of range for the field"
        case .malformedBool: "expected true or false"
        case .malformedMap: "expected an object of keys to values"
        case .unrecognizedEnumValue: "expected one of the names of the field's enum (in protos/, with their prefix)"
        case .illegalNull: "null is not allowed here"
        case .malformedTimestamp: "expected an RFC 3339 time"
        case .malformedDuration: "expected a duration such as \"1.5s\""
        case .conflictingOneOf: "sets more than one field of a oneof"
        case .unknownField(let field): "has an unknown field '\(field)'"
        case .truncated: "the JSON ends too soon"
        case .trailingGarbage: "there is more after the JSON value"
        case .invalidUTF8: "it is not UTF-8"
        case .messageDepthLimit: "it nests too deeply"
        default: "expected another type of value"
        }
    }

    static func kind(of value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case let number as NSNumber where String(cString: number.objCType) == "c": "\(number.boolValue)"
        case let number as NSNumber: "the number \(number)"
        case let string as String: "the string \"\(string)\""
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "\(value)"
        }
    }
}
