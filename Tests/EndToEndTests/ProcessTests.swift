import BatonProto
import BatonRPC
import BatonTestKit
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The four service executables, started for real: they serve Health on their socket, refuse a second
/// instance, shut down cleanly on a signal, and come back after a kill with their clients none the wiser.
@Suite("Service processes")
struct ProcessTests {
    static let services = ["context-assembler", "gate-evaluator", "router", "metrics-collector"]
    /// The repository's example configuration (gate-evaluator refuses to start without workflows).
    static let configuration = ["BATON_CONFIG_DIR": ServiceProcess.repositoryDirectory + "/config"]

    func mode(of path: String) -> mode_t {
        var info = stat()
        _ = lstat(path, &info)
        return info.st_mode & 0o777
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    @Test(
        "each service serves Health on var/run/<name>.sock and exits 0 on SIGTERM, removing its socket",
        arguments: Self.services
    )
    func servesAndStops(name: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let process = try ServiceProcess.start(
            name,
            environment: Self.configuration,
            workingDirectory: directory.path,
            logPath: directory.appending("log")
        )
        defer { process.stop() }
        let socket = directory.appending("var/run/\(name).sock")
        try await process.waitUntilServing(socketPath: socket)
        #expect(self.mode(of: directory.appending("var/run")) == 0o700)
        #expect(self.mode(of: socket) == 0o600)
        #expect(self.exists(directory.appending("var/data")))

        process.signal(SIGTERM)
        #expect(await process.waitForExit() == 0)
        #expect(!self.exists(socket))
    }

    @Test(
        "SIGTERM the moment the socket appears (while preparing) and the moment it is SERVING: drained, exit 0, socket gone",
        arguments: [false, true]
    )
    func sigtermWhileStarting(afterServing: Bool) async throws {
        // The router prepares the longest (it opens its database and restores reservations). Twenty starts make
        // the signal land on every side of "serving"; each must be a clean drain.
        for attempt in 0..<20 {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let process = try ServiceProcess.start(
                "router",
                environment: Self.configuration,
                workingDirectory: directory.path,
                logPath: directory.appending("log")
            )
            defer { process.stop() }
            let socket = directory.appending("var/run/router.sock")
            if afterServing {
                try await process.waitUntilServing(socketPath: socket)
            } else {
                #expect(await eventually { self.exists(socket) || process.poll() != nil })
            }
            process.signal(SIGTERM)
            let status = await process.waitForExit()
            #expect(status == 0, "attempt \(attempt): exit \(status.map(String.init) ?? "none"):\n\(process.output)")
            #expect(!self.exists(socket), "attempt \(attempt): the socket was removed")
            #expect(process.output.contains("stopped"), "attempt \(attempt): it drained")
        }
    }

    @Test("SIGINT stops a service cleanly too, and BATON_RUN_DIR moves its socket")
    func sigintAndRunDirFromEnvironment() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let process = try ServiceProcess.start(
            "metrics-collector",
            environment: [
                "BATON_RUN_DIR": directory.appending("sockets"), "BATON_DATA_DIR": directory.appending("db"),
            ],
            workingDirectory: directory.path,
            logPath: directory.appending("log")
        )
        defer { process.stop() }
        try await process.waitUntilServing(socketPath: directory.appending("sockets/metrics-collector.sock"))
        #expect(self.exists(directory.appending("db")))
        process.signal(SIGINT)
        #expect(await process.waitForExit() == 0)
    }

    @Test(
        "a second instance on a live socket exits non-zero with one clear line, before opening anything",
        arguments: Self.services
    )
    func secondInstanceRefused(name: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try ServiceProcess.start(
            name,
            environment: Self.configuration,
            workingDirectory: directory.path,
            logPath: directory.appending("first.log")
        )
        defer { first.stop() }
        let socket = directory.appending("var/run/\(name).sock")
        try await first.waitUntilServing(socketPath: socket)

        let second = try ServiceProcess.start(
            name,
            environment: Self.configuration,
            workingDirectory: directory.path,
            logPath: directory.appending("second.log")
        )
        defer { second.stop() }
        let status = await second.waitForExit()
        #expect(status != nil && status != 0)
        let lines = second.output.split(separator: "\n")
        #expect(lines.contains { $0.contains("another process is already serving on 'var/run/\(name).sock'") })
        // One line: nothing was loaded, opened or restored before the socket was refused.
        #expect(lines.count == 1, "expected one line, got: \(second.output)")

        try await first.waitUntilServing(socketPath: socket, within: .seconds(5))
    }

    @Test("a stale socket left by a killed process is replaced when it starts again")
    func staleSocketAfterKill() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.appending("var/run/metrics-collector.sock")
        let first = try ServiceProcess.start(
            "metrics-collector",
            workingDirectory: directory.path,
            logPath: directory.appending("log")
        )
        defer { first.stop() }
        try await first.waitUntilServing(socketPath: socket)
        first.stop()
        #expect(self.exists(socket), "SIGKILL leaves the socket file behind")

        let second = try ServiceProcess.start(
            "metrics-collector",
            workingDirectory: directory.path,
            logPath: directory.appending("log")
        )
        defer { second.stop() }
        try await second.waitUntilServing(socketPath: socket)
        #expect(second.output.contains("replaced a stale socket file"))
    }

    @Test("kill -9 during traffic, start again: the same client object's later calls succeed")
    func restartDuringTraffic() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.appending("var/run/gate-evaluator.sock")
        let log = directory.appending("log")
        let first = try ServiceProcess.start(
            "gate-evaluator",
            environment: Self.configuration,
            workingDirectory: directory.path,
            logPath: log
        )
        defer { first.stop() }
        try await first.waitUntilServing(socketPath: socket)

        let client = RPCClient(socketPath: socket)
        let check: @Sendable (CallOptions) async throws -> HealthStatusProvider.Status = { options in
            try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
                options: options
            ).status
        }
        let succeeded = Counter()
        let failed = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Traffic: 8 callers in a loop, through the kill, until the test has restarted the server.
            let restarted = Flag()
            for _ in 0..<8 {
                group.addTask {
                    while !restarted.isSet {
                        do {
                            _ = try await check(CallOptions(timeout: .seconds(5)))
                            succeeded.increment()
                        } catch let error as RPCError {
                            #expect([.unavailable, .deadlineExceeded].contains(error.code), "\(error)")
                            failed.increment()
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            #expect(await eventually { succeeded.value >= 50 }, "traffic flows before the kill")
            first.stop()
            // While the server is down, calls fail fast (UNAVAILABLE) rather than hang.
            #expect(await eventually { failed.value >= 8 }, "calls made while the server was down fail fast")
            let second = try ServiceProcess.start(
                "gate-evaluator",
                environment: Self.configuration,
                workingDirectory: directory.path,
                logPath: log
            )
            defer { second.stop() }
            try await second.waitUntilServing(socketPath: socket)
            for _ in 0..<20 {
                #expect(try await check(CallOptions(timeout: .seconds(5))) == .serving)
            }
            let before = succeeded.value
            #expect(await eventually { succeeded.value >= before + 50 }, "the callers' own loops recover too")
            restarted.set()
            try await group.waitForAll()
        }
        await client.close()
    }

    @Test(
        "a bad setting is refused at start with a message naming it",
        arguments: [
            (["--log-level", "loud"], [String: String](), "--log-level 'loud' is not a log level"),
            ([], ["BATON_LOG_LEVEL": "verbose"], "BATON_LOG_LEVEL 'verbose' is not a log level"),
            ([], ["BATON_RUN_DIR": ""], "BATON_RUN_DIR is empty"),
            (["--data-dir", ""], [:], "--data-dir is empty"),
            (
                [], ["BATON_SOCKET_GROUP": "no-such-group-here"],
                "BATON_SOCKET_GROUP 'no-such-group-here' names no group"
            ),
            (["--frobnicate"], [:], "Unknown option '--frobnicate'"),
        ]
    )
    func badSetting(arguments: [String], environment: [String: String], message: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let executable = ServiceProcess.productsDirectory + "/metrics-collector"
        let result = try await ServiceProcess.run(
            path: executable,
            arguments: arguments,
            environment: environment,
            in: directory
        )
        #expect(result.status != nil && result.status != 0)
        #expect(result.output.contains(message), "output: \(result.output)")
    }

    @Test("a run directory path that is a file is refused, naming it")
    func runDirectoryIsAFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        fclose(fopen(directory.appending("taken"), "w"))
        let executable = ServiceProcess.productsDirectory + "/metrics-collector"
        let result = try await ServiceProcess.run(
            path: executable,
            arguments: ["--run-dir", "taken/run"],
            in: directory
        )
        #expect(result.status == 1)
        #expect(result.output.contains("run directory 'taken/run': './taken' exists and is not a directory"))
    }
}

/// A count several tasks add to.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { self.count.load(ordering: .acquiring) }

    func increment() { self.count.add(1, ordering: .relaxed) }
}

/// A flag one task sets and others poll.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { self.value.load(ordering: .acquiring) }

    func set() { self.value.store(true, ordering: .releasing) }
}
