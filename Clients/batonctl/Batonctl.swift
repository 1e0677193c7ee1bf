import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import Logging
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// `batonctl`: the operator's and integrator's command line for a running Baton.
@main
struct Batonctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batonctl",
        abstract:
            "Control and inspect a running Baton: its processes (through the supervisor), their health, and the handoff figures.",
        subcommands: [
            Status.self, Start.self, Stop.self, Restart.self, Logs.self, Events.self, Health.self, Report.self,
            Metrics.self,
            Call.self, Calls.self, BriefCommand.self, Explain.self, Handoffs.self, Validate.self, Reload.self,
            HashToken.self,
        ]
    )

    /// As ArgumentParser's, except that a wrong command line exits 2, as the README says, rather than 64.
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            if Self.exitCode(for: error) == .validationFailure {
                StandardStream.writeLine(Self.fullMessage(for: error), to: 2)
                Self.exit(withError: ExitCode(2))
            }
            Self.exit(withError: error)
        }
    }
}

/// Where to find the sockets; every command takes it.
struct Connection: ParsableArguments {
    @Option(help: "Directory of the sockets (default: $BATON_RUN_DIR, else var/run).")
    var runDir: String?

    var runDirectory: String {
        if let runDir = self.runDir {
            return runDir
        }
        return ProcessEnvironment.current["BATON_RUN_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? BatonConfiguration.defaultRunDirectory
    }

    func socket(of process: String) -> String {
        BatonConfiguration.socketPath(of: process, in: self.runDirectory)
    }

    /// A client for `process`; library logging stays quiet so that output is only what the command prints.
    func client(of process: String) -> RPCClient {
        var logger = Logger(label: "batonctl")
        logger.logLevel = .critical
        return RPCClient(socketPath: self.socket(of: process), logger: logger)
    }

    /// Calls a unary method of `process`. A failed call is reported in one line by ``fail(_:of:)``.
    func call<Request: Message, Reply: Message>(
        _ process: String,
        _ method: UnaryMethod<Request, Reply>,
        _ request: Request
    ) async throws -> Reply {
        let client = self.client(of: process)
        do {
            let result = try await client.unary(method, request, options: CallOptions(timeout: .seconds(60)))
            await client.close()
            return result
        } catch let error as RPCError {
            await client.close()
            try self.fail(error, of: process)
        }
    }

    /// Calls the supervisor; when it is not running, says so and how to start it, in one line, and exits 2.
    func callSupervisor<Request: Message, Reply: Message>(
        _ method: UnaryMethod<Request, Reply>,
        _ request: Request
    ) async throws -> Reply {
        try await self.call("supervisor", method, request)
    }
}

extension Connection {
    /// Calls a streaming method of the supervisor and hands each reply to `body`; errors as ``callSupervisor``.
    func streamFromSupervisor<Request: Message, Reply: Message>(
        _ method: ServerStreamingMethod<Request, Reply>,
        _ request: Request,
        _ body: (Reply) -> Void
    ) async throws {
        let client = self.client(of: "supervisor")
        do {
            for try await reply in try client.serverStream(method, request) {
                body(reply)
            }
            await client.close()
        } catch let error as RPCError {
            await client.close()
            try self.fail(error, of: "supervisor")
        }
    }

    /// Reports a failed call in one line and exits: 2 when the process is not running (the command could not
    /// run), 1 for any other failed call.
    func fail(_ error: RPCError, of process: String) throws -> Never {
        guard error.code == .unavailable else {
            Output.error("\(error.code): \(error.message)")
            throw ExitCode(process == "supervisor" ? 2 : 1)
        }
        if process == "supervisor" {
            Output.error(
                "the supervisor is not running (nothing answers on \(self.socket(of: "supervisor"))); "
                    + "start Baton with scripts/run.sh"
            )
            throw ExitCode(2)
        }
        Output.error(
            "\(process) does not answer on \(self.socket(of: process)) (\(error.message)); is Baton running? batonctl status"
        )
        throw ExitCode(2)
    }
}

enum Output {
    /// Writes one line to standard output at once, so that `logs -f` through a pipe shows each line as it comes.
    static func line(_ text: String) {
        StandardStream.writeLine(text)
    }

    static func error(_ text: String) {
        StandardStream.writeLine("batonctl: \(text)", to: 2)
    }

    /// A table with a header row, columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) {
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        for row in [header] + rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }
            Self.line(cells.joined(separator: "  "))
        }
    }

    static func duration(milliseconds: Int64) -> String {
        let seconds = milliseconds / 1000
        if seconds < 60 {
            return "\(seconds)s"
        }
        if seconds < 3600 {
            return "\(seconds / 60)m\(seconds % 60)s"
        }
        return "\(seconds / 3600)h\((seconds % 3600) / 60)m"
    }

    /// `4.2 s`: milliseconds as seconds, to a tenth.
    static func seconds(_ milliseconds: UInt32) -> String {
        String(format: "%.1f s", Double(milliseconds) / 1000)
    }

    /// `2026-12-01T09:30:00.123Z`: a Unix time in milliseconds, in UTC.
    static func time(unixMs: Int64) -> String {
        Timestamp.iso8601(unixMs: unixMs)
    }

    static func state(_ state: Baton_Supervisor_V1_ProcessState) -> String {
        switch state {
        case .stopped: "STOPPED"
        case .starting: "STARTING"
        case .ready: "READY"
        case .backoff: "BACKOFF"
        case .stopping: "STOPPING"
        case .exited: "EXITED"
        case .fatal: "FATAL"
        default: "UNKNOWN"
        }
    }

    static func health(_ status: Grpc_Health_V1_HealthCheckResponse.ServingStatus) -> String {
        switch status {
        case .serving: "SERVING"
        case .notServing: "NOT_SERVING"
        case .serviceUnknown: "SERVICE_UNKNOWN"
        default: "UNKNOWN"
        }
    }

    static func processes(_ processes: [Baton_Supervisor_V1_ProcessStatus]) {
        Self.table(
            ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"],
            processes.map { process in
                [
                    process.name,
                    Self.state(process.state),
                    process.pid == 0 ? "-" : "\(process.pid)",
                    process.pid == 0 ? "-" : Self.duration(milliseconds: process.uptimeMs),
                    "\(process.restarts)",
                    process.lastExit.isEmpty
                        ? "-"
                        : process.lastExit
                            + (process.lastError.isEmpty || process.state == .ready ? "" : " (\(process.lastError))"),
                ]
            }
        )
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The supervisor's processes; exit 0 only when every one is READY."
    )

    @OptionGroup var connection: Connection
    @Flag(help: "Print the status as JSON (baton.supervisor.v1.StatusReply).") var json = false

    func run() async throws {
        let reply = try await self.connection.callSupervisor(
            Baton_Supervisor_V1_Supervisor.Method.status,
            Baton_Supervisor_V1_StatusRequest()
        )
        let stale = await self.staleConfigurations(reply.processes)
        if self.json {
            Output.line(try Self.json(reply))
            stale.forEach(Output.error)
        } else {
            Output.processes(reply.processes)
            stale.forEach(Output.line)
        }
        if !reply.processes.allSatisfy({ $0.state == .ready }) || !stale.isEmpty {
            throw ExitCode(1)
        }
    }

    /// The reply as protobuf JSON, but with every field of every process, also those at their default value
    /// (`"restarts":0`, `"lastExit":""`), which protobuf's JSON leaves out and a script reading it expects.
    static func json(_ reply: Baton_Supervisor_V1_StatusReply) throws -> String {
        func quoted(_ text: String) throws -> String {
            try Google_Protobuf_StringValue(text).jsonString()
        }
        let processes = try reply.processes.map { process in
            let fields = [
                ("name", try quoted(process.name)),
                ("state", try quoted(Output.state(process.state))),
                ("pid", "\(process.pid)"),
                ("startedAtUnixMs", "\"\(process.startedAtUnixMs)\""),
                ("uptimeMs", "\"\(process.uptimeMs)\""),
                ("restarts", "\(process.restarts)"),
                ("lastExit", try quoted(process.lastExit)),
                ("lastError", try quoted(process.lastError)),
                ("command", try quoted(process.command)),
            ]
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        return "{\"processes\":[" + processes.joined(separator: ",") + "]}"
    }

    /// One line per READY process that serves an older configuration than its files, saying why: the
    /// gate-evaluator's refused workflow files and the router's refused destinations.yaml.
    func staleConfigurations(_ processes: [Baton_Supervisor_V1_ProcessStatus]) async -> [String] {
        let ready = Set(processes.filter { $0.state == .ready }.map(\.name))
        var lines: [String] = []
        let options = CallOptions(timeout: .seconds(5))
        if ready.contains("gate-evaluator") {
            let client = self.connection.client(of: "gate-evaluator")
            let gates = Baton_Gates_V1_GateEvaluator.Client(client)
            if let listed = try? await gates.listWorkflows(.init(), options: options) {
                for problem in listed.problems {
                    let served = listed.workflows.first { $0.source == problem.file && !$0.lastValidCopy.isEmpty }
                    lines.append(
                        "gate-evaluator serves an older configuration than its files: "
                            + "\(problem.file):\(problem.line):\(problem.column): \(problem.message)"
                            + (served.map { " (serving \($0.id) from \($0.lastValidCopy))" } ?? " (not served)")
                    )
                }
            }
            await client.close()
        }
        if ready.contains("router") {
            let client = self.connection.client(of: "router")
            let router = Baton_Routing_V1_Router.Client(client)
            if let listed = try? await router.listDestinations(.init(), options: options) {
                for problem in listed.problems {
                    lines.append(
                        "router serves an older configuration than its files: "
                            + "\(problem.file):\(problem.line):\(problem.column): \(problem.message)"
                            + (listed.lastValidCopy.isEmpty ? "" : " (serving \(listed.lastValidCopy))")
                    )
                }
            }
            await client.close()
        }
        return lines
    }
}

/// `start`, `stop` and `restart` differ only in the method they call and the state they wait for.
protocol ProcessAction: AsyncParsableCommand {
    static var method: UnaryMethod<Baton_Supervisor_V1_ProcessRequest, Baton_Supervisor_V1_ProcessReply> { get }
    /// The state every named process must reach for exit 0.
    static var wanted: Baton_Supervisor_V1_ProcessState { get }
    var connection: Connection { get }
    var name: String { get }
}

extension ProcessAction {
    func run() async throws {
        var request = Baton_Supervisor_V1_ProcessRequest()
        request.name = self.name
        let reply = try await self.connection.callSupervisor(Self.method, request)
        Output.processes(reply.processes)
        let failed = reply.processes.filter { $0.state != Self.wanted }
        for process in failed {
            Output.error(
                "\(process.name) is \(Output.state(process.state)), not \(Output.state(Self.wanted))"
                    + (process.lastExit.isEmpty ? "" : "; last exit: \(process.lastExit)")
                    + (process.lastError.isEmpty ? "" : "; \(process.lastError)")
            )
            try await self.printLastLines(of: process.name)
        }
        if !failed.isEmpty {
            throw ExitCode(1)
        }
    }

    /// The process's last lines of output, where the reason it did not start usually is.
    private func printLastLines(of name: String) async throws {
        var request = Baton_Supervisor_V1_LogsRequest()
        request.name = name
        request.lines = 5
        var lines: [String] = []
        try await self.connection.streamFromSupervisor(Baton_Supervisor_V1_Supervisor.Method.logs, request) {
            lines.append($0.text)
        }
        if !lines.isEmpty {
            Output.error("\(name)'s last lines (batonctl logs \(name)):")
            for line in lines {
                StandardStream.writeLine("  " + line, to: 2)
            }
        }
    }
}

struct Start: ProcessAction {
    static let configuration = CommandConfiguration(abstract: "Start a process (or all); clears FATAL.")
    static let method = Baton_Supervisor_V1_Supervisor.Method.start
    static let wanted = Baton_Supervisor_V1_ProcessState.ready
    @OptionGroup var connection: Connection
    @Argument(help: "A Procfile name, or all.") var name: String
}

struct Stop: ProcessAction {
    static let configuration = CommandConfiguration(abstract: "Stop a process (or all): SIGTERM, then SIGKILL.")
    static let method = Baton_Supervisor_V1_Supervisor.Method.stop
    static let wanted = Baton_Supervisor_V1_ProcessState.stopped
    @OptionGroup var connection: Connection
    @Argument(help: "A Procfile name, or all.") var name: String
}

struct Restart: ProcessAction {
    static let configuration = CommandConfiguration(abstract: "Stop, then start, a process (or all).")
    static let method = Baton_Supervisor_V1_Supervisor.Method.restart
    static let wanted = Baton_Supervisor_V1_ProcessState.ready
    @OptionGroup var connection: Connection
    @Argument(help: "A Procfile name, or all.") var name: String
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A process's output as the supervisor kept it (the last 1,000 lines), and with -f what follows."
    )

    @OptionGroup var connection: Connection
    @Argument(help: "A Procfile name, supervisor (its own log: restarts, giving up), or all (interleaved, prefixed).")
    var name: String
    @Flag(name: .shortAndLong, help: "Keep printing new lines until interrupted.") var follow = false
    @Option(name: .customShort("n"), help: "Only the last N kept lines.") var lines: UInt32 = 0

    func run() async throws {
        var request = Baton_Supervisor_V1_LogsRequest()
        request.name = self.name
        request.follow = self.follow
        request.lines = self.lines
        let prefixed = self.name == "all"
        try await self.connection.streamFromSupervisor(Baton_Supervisor_V1_Supervisor.Method.logs, request) { line in
            Output.line(prefixed ? "\(line.name) | \(line.text)" : line.text)
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every process's state, then each change as it happens (the supervisor's Events), until interrupted."
    )

    @OptionGroup var connection: Connection
    @Flag(help: "One baton.supervisor.v1.ProcessEvent as JSON per line.") var json = false

    func run() async throws {
        try await self.connection.streamFromSupervisor(
            Baton_Supervisor_V1_Supervisor.Method.events,
            Baton_Supervisor_V1_EventsRequest()
        ) { event in
            if self.json {
                Output.line((try? event.jsonString()) ?? "")
                return
            }
            let process = event.process
            let change =
                event.previous == .unspecified
                ? Output.state(process.state)
                : "\(Output.state(event.previous)) -> \(Output.state(process.state))"
            let detail = [
                process.pid == 0 ? "" : "pid \(process.pid)",
                process.lastExit.isEmpty || event.previous == .unspecified ? "" : "last exit: \(process.lastExit)",
                process.lastError,
            ].filter { !$0.isEmpty }.joined(separator: "; ")
            Output.line(
                "\(Output.time(unixMs: event.unixMs))  \(process.name)  \(change)"
                    + (detail.isEmpty ? "" : "  (\(detail))")
            )
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Health of one process, or of every process the supervisor runs, straight from its socket.",
        discussion: """
            Without a name, the supervisor says which processes there are, so that a stopped one is listed too; \
            without a supervisor, every socket in the run directory is asked. Exit 0 only when every process \
            asked about is SERVING.
            """
    )

    @OptionGroup var connection: Connection
    @Argument(help: "A process name (router, ...); every process the supervisor runs when omitted.") var name: String?

    func run() async throws {
        var rows: [[String]] = []
        var allServing = true
        for (name, supervised) in try await self.processes() {
            let status: String
            let serving: Bool
            if let supervised, supervised.state != .ready {
                status =
                    "\(Output.state(supervised.state)) (the supervisor's state)"
                    + (supervised.lastError.isEmpty ? "" : ": \(supervised.lastError)")
                serving = false
            } else if supervised != nil, SocketFile.identity(of: self.connection.socket(of: name)) == nil {
                status = "READY (the supervisor's state; it has no socket)"
                serving = true
            } else {
                status = await self.check(name)
                serving = status == "SERVING"
            }
            allServing = allServing && serving
            rows.append([name, status])
        }
        Output.table(["NAME", "HEALTH"], rows)
        if !allServing {
            throw ExitCode(1)
        }
    }

    /// The processes to ask, each with the supervisor's status where the supervisor runs it.
    func processes() async throws -> [(String, Baton_Supervisor_V1_ProcessStatus?)] {
        if let name = self.name {
            return [(name, nil)]
        }
        let client = self.connection.client(of: "supervisor")
        let reply = try? await client.unary(
            Baton_Supervisor_V1_Supervisor.Method.status,
            Baton_Supervisor_V1_StatusRequest(),
            options: CallOptions(timeout: .seconds(10))
        )
        await client.close()
        if let reply {
            return [("supervisor", nil)] + reply.processes.map { ($0.name, $0) }
        }
        let names = try self.socketsInRunDirectory()
        guard !names.isEmpty else {
            Output.error("no supervisor and no sockets in \(self.connection.runDirectory); is Baton running?")
            throw ExitCode(2)
        }
        return names.map { ($0, nil) }
    }

    /// The Health/Check answer of `name`'s socket, or why there is none.
    func check(_ name: String) async -> String {
        let client = self.connection.client(of: name)
        let status: String
        do {
            let reply = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
                options: CallOptions(timeout: .seconds(5))
            )
            status = Output.health(reply.status)
        } catch let error as RPCError {
            status = "\(error.code): \(error.message)"
        } catch {
            status = "\(error)"
        }
        await client.close()
        return status
    }

    func socketsInRunDirectory() throws -> [String] {
        do {
            return try Directory.entries(self.connection.runDirectory)
                .filter { $0.hasSuffix(".sock") }
                .map { String($0.dropLast(".sock".count)) }
        } catch {
            Output.error(error.description)
            throw ExitCode(2)
        }
    }
}
