public import ArgumentParser
import BatonProto
import BatonRPC
import BatonRuntime
import CBatonProcess
import Logging
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The `supervisor` process: runs the Procfile's processes, restarts what crashes, and answers
/// `baton.supervisor.v1.Supervisor` on `$BATON_RUN_DIR/supervisor.sock`.
public struct SupervisorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "supervisor",
        abstract: "Runs Baton's processes from a Procfile, restarts what crashes, stops everything on SIGTERM/SIGINT.",
        discussion: """
            Beside the Procfile, two optional files are read:
              .env             KEY=VALUE lines added to every process's environment.
              supervisor.yaml  grace: seconds after SIGTERM before SIGKILL (default 10; --grace overrides it);
                               start_window: seconds a start may take to become READY before it is stopped and
                               counted as a failed start (default 60); processes: NAME: {grace, start_window}
                               overrides either for one process.
            A process that exits is restarted after a back-off of 0.1 s doubling to 10 s. Five failed starts in
            a row (each ending before the process was READY for 10 s) make it FATAL until started again.
            """
    )

    @OptionGroup var options: ProcessOptions

    @Option(help: "The Procfile to run (foreman's format). An optional .env beside it is read too.")
    var procfile = "Procfile"

    @Option(
        help: "Seconds a process gets to exit after SIGTERM before SIGKILL (default: supervisor.yaml's grace, else 10)."
    )
    var grace: Double?

    /// The command as the executable's main parses it.
    public init() {}

    public func validate() throws {
        if let grace = self.grace, !(grace > 0 && grace <= 3600) {
            throw ValidationError("--grace \(grace) is out of range; expected seconds between 0 and 3600")
        }
    }

    public func run() async throws {
        let process = try BatonProcess(name: "supervisor", options: self.options)
        let settings = try self.settings(process.configuration)
        guard baton_set_child_subreaper() == 0 else {
            throw ConfigurationError("cannot become the subreaper of the processes' children")
        }
        let supervisor = ProcessSupervisor(
            settings: settings,
            logger: process.logger,
            spawnLoop: Self.spawnLoop
        )
        // The processes stop first, then the control socket, so that status stays answerable while they stop.
        try await process.run(
            methods: SupervisorAPI(supervisor: supervisor, shutdown: { await process.shutdown() }).methods,
            stoppingFirst: [supervisor]
        )
    }

    /// The thread that spawns the processes and relays their output: one of its own, so that neither a fork nor a
    /// blocking write of a child's line ever delays the control socket's calls, and one that lives as long as
    /// the supervisor (PR_SET_PDEATHSIG fires when the spawning thread exits).
    static let spawnLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()

    /// Reads the Procfile and its .env, and builds every process's environment.
    func settings(_ configuration: BatonConfiguration) throws -> ProcessSupervisor.Settings {
        let procfileText = try TextFile.read(self.procfile)
        let procfile = try Procfile.parse(procfileText, file: self.procfile)
        let directory = Self.directory(of: self.procfile)
        let dotEnvPath = directory + "/.env"
        var environment = ProcessEnvironment.current
        if access(dotEnvPath, F_OK) == 0 {
            environment.merge(try DotEnv.parse(try TextFile.read(dotEnvPath), file: dotEnvPath)) { $1 }
        }
        let yamlPath = directory + "/supervisor.yaml"
        var file = SupervisorFile()
        if access(yamlPath, F_OK) == 0 {
            file = try SupervisorFile.parse(
                try TextFile.read(yamlPath),
                file: yamlPath,
                processes: Set(procfile.entries.map(\.name))
            )
        }
        let grace = self.grace ?? file.grace ?? 10
        let workingDirectory = Self.absolute(directory)
        environment["BATON_RUN_DIR"] = Self.absolute(configuration.runDirectory)
        environment["BATON_DATA_DIR"] = Self.absolute(configuration.dataDirectory)
        if self.options.configDir != nil {
            // Given on the command line, it reaches the processes too (as $BATON_CONFIG_DIR would by itself).
            environment["BATON_CONFIG_DIR"] = Self.absolute(configuration.configDirectory)
        }
        return ProcessSupervisor.Settings(
            procfile: procfile,
            environment: environment,
            workingDirectory: workingDirectory,
            runDirectory: Self.absolute(configuration.runDirectory),
            grace: .milliseconds(Int64(grace * 1000)),
            processGrace: file.processGrace.mapValues { .milliseconds(Int64($0 * 1000)) },
            startWindow: .milliseconds(Int64((file.startWindow ?? 60) * 1000)),
            processStartWindow: file.processStartWindow.mapValues { .milliseconds(Int64($0 * 1000)) }
        )
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else {
            return "."
        }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") {
            return path
        }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else {
            return path
        }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path == "." ? cwd : cwd + "/" + path
    }
}
