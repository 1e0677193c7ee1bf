import BatonProto
public import BatonRPC
import CBatonProcess

#if canImport(Glibc)
import Glibc
#endif

/// What the services' `benchmark` subcommands share: timing, concurrent callers, and a copy of the running
/// executable as the server.
public enum Benchmarking {
    /// Calls per second and latency percentiles of one concurrent run.
    public struct Rate: Sendable {
        /// How many calls the run made.
        public var calls: Int
        public var perSecond: Double
        public var p50Microseconds: Int
        public var p99Microseconds: Int
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Runs `calls` calls of `call` (given the call's index), `inFlight` at a time on the client's executor.
    public static func rate(
        calls: Int,
        inFlight: Int,
        client: RPCClient,
        _ call: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> Rate {
        let perCaller = calls / inFlight
        let clock = ContinuousClock()
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Int].self) { group in
            for caller in 0..<inFlight {
                group.addTask(executorPreference: client.taskExecutor) {
                    var latencies: [Int] = []
                    latencies.reserveCapacity(perCaller)
                    for index in 0..<perCaller {
                        let start = clock.now
                        try await call(caller * perCaller + index)
                        latencies.append(Int(Self.seconds(clock.now - start) * 1e6))
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }.sorted()
        }
        let elapsed = Self.seconds(clock.now - started)
        return Rate(
            calls: latencies.count,
            perSecond: Double(latencies.count) / elapsed,
            p50Microseconds: latencies[latencies.count / 2],
            p99Microseconds: latencies[latencies.count * 99 / 100]
        )
    }

    /// The CPU time (user and system, all threads) process `pid` has used so far, from `/proc/<pid>/stat`; nil
    /// when it cannot be read. Divided by the calls of a run, it says where a call's cost lies, server or client.
    public static func cpuSeconds(of pid: Int32) -> Double? {
        guard let line = try? TextFile.read("/proc/\(pid)/stat") else {
            return nil
        }
        // The name, field 2, is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
        guard let close = line.lastIndex(of: ")") else {
            return nil
        }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            return nil
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The resident memory of process `pid` now (or, with `peak`, its highest so far), in MiB, from
    /// `/proc/<pid>/status`; nil when it cannot be read.
    public static func residentMiB(of pid: Int32, peak: Bool = false) -> Double? {
        let field = peak ? "VmHWM:" : "VmRSS:"
        guard let status = try? TextFile.read("/proc/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else {
            return nil
        }
        return kilobytes / 1024
    }

    /// Waits, up to 30 s, until the server behind `client` says SERVING: it answers Health while it still opens
    /// its stores, and its own methods only after.
    public static func waitUntilServing(_ client: RPCClient) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while true {
            let reply = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
                options: CallOptions(timeout: .seconds(30), waitForReady: true)
            )
            if reply.status == .serving {
                return
            }
            guard clock.now < deadline else {
                throw ConfigurationError("the server did not report SERVING within 30 s (it reports \(reply.status))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The path of the executable `name` that sits beside this one (`router` beside `router-benchmark`, both in
    /// `.build/release`).
    public static func sibling(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let this = String(decoding: buffer.prefix(max(0, count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(this[...(this.lastIndex(of: "/") ?? this.startIndex)]) + name
    }

    /// Starts the executable `name` that sits beside this one (see ``sibling(_:)``) with `arguments`: the real
    /// process, as the server side of a benchmark or a simulation. With `output`, its standard output and error
    /// are appended to that file.
    public static func spawnSibling(_ name: String, _ arguments: [String], output: String? = nil) throws -> Int32 {
        let executable = Self.sibling(name)
        var pid: pid_t = 0
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // None of this process's sockets: a connection it closes must not stay open in the child.
        baton_spawn_close_from(&actions, 3)
        let result = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard result == 0 else {
            throw ConfigurationError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Stops a process started by ``spawnSibling(_:_:)`` and waits for it.
    public static func stop(_ pid: Int32) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
