import BatonProto
import BatonRPC
import BatonRuntime
import CBatonProcess
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A real Baton executable started by a test: its pid, its output in a log file, signals, and its exit status.
///
/// Call ``stop()`` (it is synchronous, so a `defer` can) to leave nothing running.
public final class ServiceProcess: Sendable {
    /// The process id.
    public let pid: Int32
    /// The file the process's standard output and error go to.
    public let logPath: String
    private let exitStatus = NIOLockedValueBox<Int32?>(nil)

    private init(pid: pid_t, logPath: String) {
        self.pid = pid
        self.logPath = logPath
    }

    /// The directory the test binary runs from, where `swift build` also puts the executables.
    public static var productsDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = count > 0 ? String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        var components = path.split(separator: "/", omittingEmptySubsequences: false)
        // .../debug/BatonPackageTests.xctest, or .../debug/BatonPackageTests.xctest/Contents/... elsewhere
        while let last = components.last, !last.hasSuffix(".xctest") {
            components.removeLast()
        }
        components.removeLast()
        return components.joined(separator: "/")
    }

    /// The repository's root, found from this file's path at build time.
    public static var repositoryDirectory: String {
        var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)  // Shared/BatonTestKit/ServiceProcess.swift
        return components.joined(separator: "/")
    }

    /// Starts the executable `name` from ``productsDirectory`` with `arguments`, adding `environment` to this
    /// process's own, in `workingDirectory`, its output going to `logPath`.
    public static func start(
        _ name: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workingDirectory: String,
        logPath: String
    ) throws -> ServiceProcess {
        try self.start(
            path: Self.productsDirectory + "/" + name,
            arguments: arguments,
            environment: environment,
            workingDirectory: workingDirectory,
            logPath: logPath
        )
    }

    /// Starts the program at `path`; see ``start(_:arguments:environment:workingDirectory:logPath:)``.
    public static func start(
        path: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workingDirectory: String,
        logPath: String
    ) throws -> ServiceProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Standard input is empty, whatever the test runner's is, so that nothing waits on it.
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // None of the test process's sockets: a connection an in-process server closes would otherwise stay open,
        // and its client see no end, for as long as the child (a whole simulation) runs.
        baton_spawn_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessEnvironment.current
        merged.merge(environment) { $1 }
        // `sh` changes directory and then becomes the program (same pid): glibc's addchdir is not importable here.
        let command = ["/bin/sh", "-c", "cd \"$1\" || exit 127; shift; exec \"$@\"", "sh", workingDirectory, path]
        let argv = (command + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw TestKitError("cannot start \(path): \(String(cString: strerror(result)))")
        }
        return ServiceProcess(pid: pid, logPath: logPath)
    }

    /// Runs the program at `path` to its end (killing it after `timeout`) and returns its status and output.
    /// Its output goes to a fresh file `<name>.<n>.log` in `directory`.
    public static func run(
        path: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        in directory: TemporaryDirectory,
        workingDirectory: String? = nil,
        within timeout: Duration = .seconds(20)
    ) async throws -> (status: Int32?, output: String) {
        let name = path.split(separator: "/").last.map(String.init) ?? "program"
        let process = try Self.start(
            path: path,
            arguments: arguments,
            environment: environment,
            workingDirectory: workingDirectory ?? directory.path,
            logPath: directory.appending("\(name).\(UInt32.random(in: 0...UInt32.max)).log")
        )
        defer { process.stop() }
        let status = await process.waitForExit(within: timeout)
        return (status, process.output)
    }

    /// Sends `signal` to the process.
    public func signal(_ signal: Int32) {
        if self.exitStatus.withLockedValue({ $0 }) == nil {
            kill(self.pid, signal)
        }
    }

    /// The exit code, or 128 + the signal that ended it, once the process has ended; nil while it runs.
    public func poll() -> Int32? {
        self.exitStatus.withLockedValue { status in
            if let status {
                return status
            }
            var raw: Int32 = 0
            guard waitpid(self.pid, &raw, WNOHANG) == self.pid else {
                return nil
            }
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
            return status
        }
    }

    /// Waits up to `timeout` for the process to end; returns its ``poll()`` status, or nil if it still runs.
    public func waitForExit(within timeout: Duration = .seconds(20)) async -> Int32? {
        _ = await eventually(within: timeout) { self.poll() != nil }
        return self.poll()
    }

    /// Kills the process (SIGKILL) if it still runs and reaps it. Safe to call more than once.
    public func stop() {
        guard self.poll() == nil else {
            return
        }
        kill(self.pid, SIGKILL)
        self.exitStatus.withLockedValue { status in
            var raw: Int32 = 0
            if status == nil, waitpid(self.pid, &raw, 0) == self.pid {
                status = 128 + SIGKILL
            }
        }
    }

    /// What the process has written so far.
    public var output: String {
        (try? TextFile.read(self.logPath)) ?? ""
    }

    /// Waits until Health/Check on `socketPath` answers SERVING, for at most `timeout`.
    public func waitUntilServing(socketPath: String, within timeout: Duration = .seconds(30)) async throws {
        let client = RPCClient(socketPath: socketPath)
        let serving = await eventually(within: timeout) {
            guard self.poll() == nil else {
                return true
            }
            let reply = try? await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
            )
            return reply?.status == .serving
        }
        await client.close()
        if let status = self.poll() {
            throw TestKitError("process exited with status \(status) before serving: \(self.output)")
        }
        guard serving else {
            throw TestKitError("process was not SERVING on \(socketPath) within \(timeout): \(self.output)")
        }
    }
}
