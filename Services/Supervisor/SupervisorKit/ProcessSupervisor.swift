import BatonProto
import BatonRPC
import BatonRuntime
import CBatonProcess
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Runs the Procfile's processes and keeps them running: states and restarts with back-off as supervisord does,
/// stop and restart of one process without touching the others, and nothing left behind at shutdown.
actor ProcessSupervisor: Service {
    /// Fixed by the issue that specified the supervisor; a named constant each, so the rules read as written.
    enum Rules {
        static let initialBackoff = Duration.milliseconds(100)
        static let maxBackoff = Duration.seconds(10)
        /// A start that ends before the process has been READY this long counts as failed.
        static let readyToCount = Duration.seconds(10)
        /// Once READY this long, the back-off starts again from ``initialBackoff``.
        static let readyToResetBackoff = Duration.seconds(30)
        static let failedStartsBeforeFatal = 5
        /// A process without a socket is READY after staying up this long.
        static let upWithoutSocket = Duration.seconds(1)
    }

    /// One process of the Procfile and everything the supervisor knows of it.
    struct Child {
        let entry: Procfile.Entry
        let output: ChildOutput
        var state = Baton_Supervisor_V1_ProcessState.stopped
        var pid: pid_t = 0
        var startedAtUnixMs: Int64 = 0
        var startedAt: ContinuousClock.Instant?
        var readyAt: ContinuousClock.Instant?
        var restarts: UInt32 = 0
        var failedStarts = 0
        var backoff = Rules.initialBackoff
        var lastExit = ""
        var lastError = ""
        /// Set when this run was stopped for missing its start window, so that its exit says why.
        var missedStartWindow = ""
        /// Bumped at every start, so that a timer or readiness check for an older run does nothing.
        var run = 0
        var timer: Task<Void, Never>?
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    struct Settings: Sendable {
        var procfile: Procfile
        var environment: [String: String]
        var workingDirectory: String
        var runDirectory: String
        var grace: Duration
        /// Per-process grace periods from supervisor.yaml, overriding ``grace``.
        var processGrace: [String: Duration] = [:]
        /// How long a start may take to become READY before it is stopped and counted as a failed start.
        var startWindow = Duration.seconds(60)
        /// Per-process start windows from supervisor.yaml, overriding ``startWindow``.
        var processStartWindow: [String: Duration] = [:]
    }

    private let settings: Settings
    private let logger: Logger
    private let spawnLoop: any EventLoop
    /// Every change of a process's state is published to the `Events` watchers.
    private var children: [String: Child] = [:] {
        didSet {
            for (name, child) in self.children where oldValue[name]?.state != child.state {
                self.publish(name, previous: oldValue[name]?.state ?? .unspecified)
            }
        }
    }
    private let watchers = NIOLockedValueBox<[Int: AsyncStream<Baton_Supervisor_V1_ProcessEvent>.Continuation]>([:])
    private let nextWatcher = NIOLockedValueBox(0)
    private var order: [String] = []
    private var shuttingDown = false
    private var stoppedAll = false
    /// Exits reaped before their spawn recorded the pid (a child can exit while `spawn` awaits the fork), and of
    /// orphaned descendants; only the latest few are kept.
    private var unclaimedExits: [(pid: pid_t, status: Int32)] = []
    private let clock = ContinuousClock()

    /// The supervisor's own log lines, for `batonctl logs supervisor`.
    private let ownOutput = ChildOutput(name: "supervisor", width: 0, colour: 0, echo: false)

    init(settings: Settings, logger: Logger, spawnLoop: any EventLoop) {
        self.settings = settings
        let own = self.ownOutput
        var kept = Logger(label: logger.label) { label in
            var stream = StreamLogHandler.standardError(label: label)
            stream.logLevel = logger.logLevel
            return MultiplexLogHandler([stream, KeptLogHandler(output: own, label: label, logLevel: logger.logLevel)])
        }
        for (key, value) in logger.handler.metadata {
            kept[metadataKey: key] = value
        }
        self.logger = kept
        self.spawnLoop = spawnLoop
        let width = settings.procfile.entries.map(\.name.count).max() ?? 0
        for (index, entry) in settings.procfile.entries.enumerated() {
            self.order.append(entry.name)
            self.children[entry.name] = Child(
                entry: entry,
                output: ChildOutput(name: entry.name, width: width, colour: index)
            )
        }
    }

    // MARK: - Service

    /// Starts every process in the Procfile's order, reaps exits until graceful shutdown (or cancellation), then
    /// stops them all. Reaping goes on until every process has stopped, so even a cancelled supervisor leaves
    /// nothing running.
    func run() async throws {
        for name in self.order {
            await self.start(name)
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.reapUntilStopped()
            }
            try? await gracefulShutdown()
            await self.stopAll()
            self.stoppedAll = true
        }
        self.logger.info("all processes stopped")
    }

    // MARK: - Control

    /// The kept output of `name`, of the supervisor itself for "supervisor", or of every one of them for "all".
    func outputs(of name: String) throws(RPCError) -> [ChildOutput] {
        if name == "all" {
            return [self.ownOutput] + self.order.compactMap { self.children[$0]?.output }
        }
        if name == "supervisor" && self.children[name] == nil {
            return [self.ownOutput]
        }
        guard let child = self.children[name] else {
            _ = try self.names(matching: name)
            throw RPCError.notFound("no process named '\(name)'")
        }
        return [child.output]
    }

    /// A stream of every state change from now on; it ends when the consumer's task is cancelled.
    nonisolated func events() -> AsyncStream<Baton_Supervisor_V1_ProcessEvent> {
        let (stream, continuation) = AsyncStream<Baton_Supervisor_V1_ProcessEvent>.makeStream()
        let id = self.nextWatcher.withLockedValue { next in
            defer { next += 1 }
            return next
        }
        self.watchers.withLockedValue { $0[id] = continuation }
        continuation.onTermination = { [watchers = self.watchers] _ in
            _ = watchers.withLockedValue { $0.removeValue(forKey: id) }
        }
        return stream
    }

    private func publish(_ name: String, previous: Baton_Supervisor_V1_ProcessState) {
        guard let process = self.status(of: [name]).first else {
            return
        }
        var event = Baton_Supervisor_V1_ProcessEvent()
        event.process = process
        event.previous = previous
        event.unixMs = ChildOutput.nowUnixMs()
        for watcher in self.watchers.withLockedValue({ Array($0.values) }) {
            watcher.yield(event)
        }
    }

    /// The processes named `name` ("all" for every one); throws NOT_FOUND naming an unknown one.
    func names(matching name: String) throws(RPCError) -> [String] {
        if name == "all" {
            return self.order
        }
        guard self.children[name] != nil else {
            throw RPCError.notFound(
                "no process named '\(name)' in the Procfile; known: \(self.order.joined(separator: ", "))"
            )
        }
        return [name]
    }

    func status(of names: [String]? = nil) -> [Baton_Supervisor_V1_ProcessStatus] {
        (names ?? self.order).compactMap { self.children[$0] }.map { child in
            var status = Baton_Supervisor_V1_ProcessStatus()
            status.name = child.entry.name
            status.command = child.entry.command
            status.state = child.state
            status.pid = child.pid
            status.startedAtUnixMs = child.startedAtUnixMs
            if child.pid != 0, let startedAt = child.startedAt {
                status.uptimeMs = Int64((self.clock.now - startedAt) / .milliseconds(1))
            }
            status.restarts = child.restarts
            status.lastExit = child.lastExit
            status.lastError = child.lastError
            return status
        }
    }

    /// Starts `name` unless it is running; an operator's start also clears FATAL and the failure count.
    func start(_ name: String) async {
        guard var child = self.children[name], !self.shuttingDown else {
            return
        }
        switch child.state {
        case .starting, .ready, .stopping:
            return
        default:
            break
        }
        child.timer?.cancel()
        child.timer = nil
        if child.state == .fatal || child.state == .stopped || child.state == .exited {
            child.failedStarts = 0
            child.backoff = Rules.initialBackoff
            child.restarts = 0
        }
        self.children[name] = child
        await self.spawn(name)
    }

    /// Stops `name`: SIGTERM to its process group, SIGKILL after the grace period; returns once it has exited.
    func stop(_ name: String) async {
        // A spawn in flight has no pid yet, and kill(-0, ...) would signal the supervisor's own process group.
        while let child = self.children[name], child.state == .starting, child.pid == 0 {
            try? await Task.sleep(for: .milliseconds(5))
        }
        guard var child = self.children[name] else {
            return
        }
        switch child.state {
        case .starting, .ready:
            guard child.pid > 0 else {
                return
            }
            child.state = .stopping
            child.lastError = ""
            let pid = child.pid
            let run = child.run
            kill(-pid, SIGTERM)
            self.logger.info("stopping", metadata: ["baton.child": "\(name)", "baton.pid": "\(pid)"])
            child.timer?.cancel()
            child.timer = Task { [grace = self.settings.processGrace[name] ?? self.settings.grace] in
                try? await Task.sleep(for: grace)
                self.killIfStillStopping(name, run: run)
            }
            self.children[name] = child
            await self.waitForExit(name)
        case .stopping:
            await self.waitForExit(name)
        case .backoff:
            child.timer?.cancel()
            child.timer = nil
            child.state = .stopped
            self.children[name] = child
        default:
            return
        }
    }

    /// Waits until none of `names` is STARTING (each is READY, or has failed), for at most `limit`.
    func settle(_ names: [String], limit: Duration = .seconds(60)) async {
        let deadline = self.clock.now + limit
        while self.clock.now < deadline, names.contains(where: { self.children[$0]?.state == .starting }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func restart(_ name: String) async {
        await self.stop(name)
        await self.start(name)
    }

    /// Stops every process at once and waits for all of them.
    func stopAll() async {
        self.shuttingDown = true
        await withDiscardingTaskGroup { group in
            for name in self.order {
                group.addTask { await self.stop(name) }
            }
        }
    }

    // MARK: - Starting

    private func spawn(_ name: String) async {
        guard var child = self.children[name] else {
            return
        }
        child.run += 1
        child.state = .starting
        // Cleared before the record is saved: the saved copy is read back after the spawn, and a stale readyAt
        // from the previous run would make a start that never became READY look long-lived.
        child.readyAt = nil
        child.lastError = ""
        child.missedStartWindow = ""
        self.children[name] = child
        var environment = self.settings.environment
        environment["BATON_PROCESS_NAME"] = name
        let arguments = ["/bin/sh", "-c", Self.shellCommand(child.entry.command)]
        do {
            let pid = try await self.spawnProcess(arguments, environment: environment, output: child.output)
            child = self.children[name] ?? child
            child.pid = pid
            child.state = .starting
            child.startedAt = self.clock.now
            child.startedAtUnixMs = ChildOutput.nowUnixMs()
            self.logger.info("starting", metadata: ["baton.child": "\(name)", "baton.pid": "\(pid)"])
            let run = child.run
            child.timer = Task { await self.watchReadiness(name, run: run) }
            self.children[name] = child
            if let index = self.unclaimedExits.firstIndex(where: { $0.pid == pid }) {
                self.exited(pid, status: self.unclaimedExits.remove(at: index).status)
            }
            return
        } catch {
            child.lastError = "cannot start: \(error)"
            child.state = .fatal
            self.logger.error("cannot start", metadata: ["baton.child": "\(name)", "baton.error": "\(error)"])
        }
        self.children[name] = child
    }

    /// Spawns on the event loop's thread, which lives as long as the supervisor: PR_SET_PDEATHSIG fires when the
    /// spawning *thread* exits, and a concurrency-pool thread may exit while its child still runs.
    private func spawnProcess(
        _ arguments: [String],
        environment: [String: String],
        output: ChildOutput
    ) async throws -> pid_t {
        var pipe: [Int32] = [0, 0]
        let piped = baton_output_pipe(&pipe)
        guard piped == 0 else {
            throw SpawnError(errno: -piped)
        }
        let (readEnd, writeEnd) = (pipe[0], pipe[1])
        let directory = self.settings.workingDirectory
        let result = try await self.spawnLoop.submit { () -> pid_t in
            let argv = arguments.map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                argv.forEach { free($0) }
                envp.forEach { free($0) }
            }
            return baton_spawn(argv, envp, directory, writeEnd)
        }.get()
        close(writeEnd)
        guard result > 0 else {
            close(readEnd)
            throw SpawnError(errno: -result)
        }
        _ = NIOPipeBootstrap(group: self.spawnLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LineRelay(output: output))
                }
            }
            .takingOwnershipOfDescriptor(input: readEnd)
        return result
    }

    /// Polls until the process is READY: SERVING on its socket, or up for a second with no socket at all.
    private func watchReadiness(_ name: String, run: Int) async {
        let socket = BatonConfiguration.socketPath(of: name, in: self.settings.runDirectory)
        let client = RPCClient(socketPath: socket)
        await self.pollReadiness(name, run: run, socket: socket, client: client)
        await client.close()
    }

    private func pollReadiness(_ name: String, run: Int, socket: String, client: RPCClient) async {
        let window = self.settings.processStartWindow[name] ?? self.settings.startWindow
        while !Task.isCancelled {
            guard let child = self.children[name], child.run == run, child.state == .starting,
                let startedAt = child.startedAt
            else {
                return
            }
            if self.clock.now - startedAt >= window {
                return self.missedStartWindow(name, run: run, window: window)
            }
            if SocketFile.identity(of: socket) != nil {
                let reply = try? await client.unary(
                    Grpc_Health_V1_Health.Method.check,
                    Grpc_Health_V1_HealthCheckRequest(),
                    options: CallOptions(timeout: .seconds(1))
                )
                if reply?.status == .serving {
                    return self.becameReady(name, run: run)
                }
            } else if self.clock.now - startedAt >= Rules.upWithoutSocket {
                return self.becameReady(name, run: run)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A start that is not READY within its window is stopped (SIGTERM, then SIGKILL after the grace period);
    /// its exit counts as a failed start, as supervisord's startsecs does.
    private func missedStartWindow(_ name: String, run: Int, window: Duration) {
        guard var child = self.children[name], child.run == run, child.state == .starting, child.pid > 0 else {
            return
        }
        let pid = child.pid
        child.lastError = "not READY within its start window of \(window); stopping it"
        child.missedStartWindow = "not READY within its start window of \(window); "
        self.children[name] = child
        self.logger.error(
            "not READY within its start window; stopping it",
            metadata: ["baton.child": "\(name)", "baton.pid": "\(pid)", "baton.start_window": "\(window)"]
        )
        kill(-pid, SIGTERM)
        let grace = self.settings.processGrace[name] ?? self.settings.grace
        Task {
            try? await Task.sleep(for: grace)
            self.killIfStillStarting(name, run: run)
        }
    }

    private func killIfStillStarting(_ name: String, run: Int) {
        guard let child = self.children[name], child.run == run, child.state == .starting, child.pid > 0 else {
            return
        }
        kill(-child.pid, SIGKILL)
    }

    private func becameReady(_ name: String, run: Int) {
        guard var child = self.children[name], child.run == run, child.state == .starting else {
            return
        }
        child.state = .ready
        child.readyAt = self.clock.now
        self.children[name] = child
        self.logger.info("ready", metadata: ["baton.child": "\(name)", "baton.pid": "\(child.pid)"])
    }

    // MARK: - Exits

    /// Collects every exited child (and, as subreaper, every orphaned descendant) until all have been stopped.
    private func reapUntilStopped() async {
        while !self.stoppedAll {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                self.exited(pid, status: status)
                continue
            }
            if Task.isCancelled {
                // A cancelled task's sleep returns at once, and blocking the thread would hold the actor, so that
                // stopAll could never run: wait on the spawn loop's timer instead, which ignores cancellation.
                try? await self.spawnLoop.scheduleTask(in: .milliseconds(20)) {}.futureResult.get()
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    private func exited(_ pid: pid_t, status: Int32) {
        guard let name = self.order.first(where: { self.children[$0]?.pid == pid }), var child = self.children[name]
        else {
            // An orphaned descendant, a child whose exec failed, or one whose spawn has not recorded it yet.
            self.unclaimedExits.append((pid, status))
            if self.unclaimedExits.count > 64 {
                self.unclaimedExits.removeFirst()
            }
            return
        }
        let how = Self.describe(status)
        child.pid = 0
        child.lastExit = how
        child.timer?.cancel()
        child.timer = nil
        let waiters = child.exitWaiters
        child.exitWaiters = []
        if child.state == .stopping {
            child.state = .stopped
            self.logger.info("stopped", metadata: ["baton.child": "\(name)", "baton.exit": "\(how)"])
        } else if self.shuttingDown {
            child.state = .exited
        } else {
            let readyFor = child.readyAt.map { self.clock.now - $0 } ?? .zero
            child.failedStarts = readyFor >= Rules.readyToCount ? 0 : child.failedStarts + 1
            if readyFor >= Rules.readyToResetBackoff {
                child.backoff = Rules.initialBackoff
            }
            if child.failedStarts >= Rules.failedStartsBeforeFatal {
                child.state = .fatal
                child.lastError =
                    child.missedStartWindow
                    + "exited \(child.failedStarts) times in a row before staying READY for 10 s; "
                    + "it stays down until started again"
                self.logger.error(
                    "giving up",
                    metadata: [
                        "baton.child": "\(name)", "baton.exit": "\(how)",
                        "baton.failed_starts": "\(child.failedStarts)",
                    ]
                )
            } else {
                child.state = .backoff
                let delay = child.backoff
                child.backoff = min(child.backoff * 2, Rules.maxBackoff)
                child.lastError = child.missedStartWindow + "restarting in \(delay)"
                let run = child.run
                child.timer = Task {
                    try? await Task.sleep(for: delay)
                    await self.backoffElapsed(name, run: run)
                }
                self.logger.warning(
                    "exited unexpectedly",
                    metadata: ["baton.child": "\(name)", "baton.exit": "\(how)", "baton.restart_in": "\(delay)"]
                )
            }
        }
        self.children[name] = child
        for waiter in waiters {
            waiter.resume()
        }
    }

    private func backoffElapsed(_ name: String, run: Int) async {
        guard let child = self.children[name], child.run == run, child.state == .backoff, !self.shuttingDown else {
            return
        }
        self.children[name]?.restarts += 1
        await self.spawn(name)
    }

    private func killIfStillStopping(_ name: String, run: Int) {
        guard let child = self.children[name], child.run == run, child.state == .stopping, child.pid != 0 else {
            return
        }
        self.logger.warning(
            "still running after the grace period; sending SIGKILL",
            metadata: ["baton.child": "\(name)", "baton.pid": "\(child.pid)"]
        )
        kill(-child.pid, SIGKILL)
    }

    private func waitForExit(_ name: String) async {
        guard self.children[name]?.pid ?? 0 != 0 else {
            return
        }
        await withCheckedContinuation { continuation in
            self.children[name]?.exitWaiters.append(continuation)
        }
    }

    /// The command as `sh -c` should run it: a simple command is exec'd, so the supervised pid is the program
    /// itself (its exit status and signals are its own, and PR_SET_PDEATHSIG, which children do not inherit,
    /// reaches it). A compound command (`;`, `&&`, pipes, ...) runs under the shell.
    static func shellCommand(_ command: String) -> String {
        let compound = command.contains { ";&|\n`(){}<>".contains($0) } || command.contains("$(")
        return compound || command.hasPrefix("exec ") ? command : "exec " + command
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        if signal == 0 {
            return "exit status \((status >> 8) & 0xFF)"
        }
        let names = [SIGTERM: "SIGTERM", SIGKILL: "SIGKILL", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT"]
        return "signal \(signal)" + (names[signal].map { " (\($0))" } ?? "")
    }
}

/// A process could not be started; the message names the system's reason.
struct SpawnError: Error, CustomStringConvertible {
    let errno: Int32

    var description: String {
        String(cString: strerror(self.errno))
    }
}
