import BatonProto
import BatonRPC
import BatonTestKit
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor, run for real on a Procfile of real processes: states, back-off, restart of one process, stop
/// with a grace period, and nothing left behind whether it is stopped or killed.
@Suite("Supervisor")
struct SupervisorTests {
    typealias Status = Baton_Supervisor_V1_ProcessStatus

    /// A running supervisor on `procfile` in a fresh directory, and a client for its control socket.
    struct Running {
        let directory: TemporaryDirectory
        let process: ServiceProcess
        let client: RPCClient

        var socket: String { self.directory.appending("var/run/supervisor.sock") }

        func status() async throws -> [String: Status] {
            let reply = try await self.client.unary(
                Baton_Supervisor_V1_Supervisor.Method.status,
                Baton_Supervisor_V1_StatusRequest(),
                options: CallOptions(timeout: .seconds(10), waitForReady: true)
            )
            return Dictionary(uniqueKeysWithValues: reply.processes.map { ($0.name, $0) })
        }

        func call(
            _ method: UnaryMethod<Baton_Supervisor_V1_ProcessRequest, Baton_Supervisor_V1_ProcessReply>,
            _ name: String
        ) async throws -> [Status] {
            var request = Baton_Supervisor_V1_ProcessRequest()
            request.name = name
            return try await self.client.unary(method, request, options: CallOptions(timeout: .seconds(30))).processes
        }

        /// Waits until `condition` holds for the status, for at most 20 s.
        func waitFor(_ condition: @escaping ([String: Status]) -> Bool) async -> Bool {
            await eventually(within: .seconds(20)) {
                (try? await self.status()).map(condition) ?? false
            }
        }

        /// Stops the supervisor if it still runs, then kills any pid it reported, and removes the directory.
        func cleanUp(pids: [Int32] = []) async {
            await self.client.close()
            self.process.signal(SIGTERM)
            _ = await self.process.waitForExit(within: .seconds(20))
            self.process.stop()
            for pid in pids where pid > 0 {
                kill(pid, SIGKILL)
            }
            self.directory.remove()
        }
    }

    static func start(
        procfile: String,
        dotEnv: String? = nil,
        supervisorYAML: String? = nil,
        arguments: [String] = [],
        prepare: (TemporaryDirectory) throws -> Void = { _ in }
    ) async throws -> Running {
        let directory = try TemporaryDirectory()
        try prepare(directory)
        try Self.write(procfile, to: directory.appending("Procfile"))
        if let dotEnv {
            try Self.write(dotEnv, to: directory.appending(".env"))
        }
        if let supervisorYAML {
            try Self.write(supervisorYAML, to: directory.appending("supervisor.yaml"))
        }
        let process = try ServiceProcess.start(
            "supervisor",
            arguments: arguments,
            workingDirectory: directory.path,
            logPath: directory.appending("supervisor.log")
        )
        let running = Running(
            directory: directory,
            process: process,
            client: RPCClient(socketPath: directory.appending("var/run/supervisor.sock"))
        )
        return running
    }

    static func write(_ text: String, to path: String) throws {
        guard let file = fopen(path, "w") else {
            throw TestKitError("cannot write \(path)")
        }
        fputs(text, file)
        fclose(file)
    }

    static func alive(_ pid: Int32) -> Bool {
        pid > 0 && kill(pid, 0) == 0 && !Self.isZombie(pid)
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let file = fopen("/proc/\(pid)/stat", "r") else {
            return false
        }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, 512, file) != nil else {
            return false
        }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: ")").last?.trimmingPrefix(" ").first == "Z"
    }

    var service: String { ServiceProcess.productsDirectory + "/metrics-collector" }

    @Test("a process that always crashes backs off and goes FATAL after 5 tries while the others stay READY")
    func crashLoopGoesFatal() async throws {
        let running = try await Self.start(procfile: "metrics-collector: \(self.service)\ncrasher: sh -c 'exit 3'\n")
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["crasher"]?.state == .fatal })
            let status = try await running.status()
            pids = status.values.map(\.pid)
            #expect(status["metrics-collector"]?.state == .ready)
            #expect(status["crasher"]?.lastExit == "exit status 3")
            #expect(status["crasher"]?.lastError.contains("exited 5 times in a row") == true)
            #expect(status["crasher"]?.restarts == 4)
            let log = running.process.output
            for delay in ["0.1 seconds", "0.2 seconds", "0.4 seconds", "0.8 seconds"] {
                #expect(log.contains("baton.restart_in=\(delay)"), "growing back-off: \(delay)")
            }
            #expect(log.contains("giving up"))
            // An operator's start clears FATAL and the restart count.
            let started = try await running.call(Baton_Supervisor_V1_Supervisor.Method.start, "crasher")
            #expect(started.first?.state == .starting || started.first?.state == .backoff)
            #expect(started.first?.restarts == 0)
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test(
        "a process that was READY for a long time, then restarted into a crash loop, goes FATAL: the old run's readiness does not count for the new one"
    )
    func crashLoopAfterLongReadyGoesFatal() async throws {
        let running = try await Self.start(procfile: "flaky: sh -c 'test -f broken && exit 3; exec sleep 1000'\n")
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["flaky"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            // READY for longer than the 10 s after which a run counts as good, then broken (as a bad config is).
            try await Task.sleep(for: .seconds(11))
            try Self.write("", to: running.directory.appending("broken"))
            _ = try await running.call(Baton_Supervisor_V1_Supervisor.Method.restart, "flaky")
            #expect(await running.waitFor { $0["flaky"]?.state == .fatal })
            let status = try await running.status()
            #expect(status["flaky"]?.lastError.contains("exited 5 times in a row") == true)
            #expect(status["flaky"]?.restarts == 4)
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("a start that never becomes READY is stopped at the end of its start window and counts as failed: FATAL")
    func startWindow() async throws {
        let running = try await Self.start(
            procfile: "hanger: sh -c 'touch \"$BATON_RUN_DIR/hanger.sock\"; exec sleep 1000'\n",
            supervisorYAML: "processes:\n  hanger:\n    start_window: 1\n    grace: 1\n"
        )
        do {
            #expect(await running.waitFor { $0["hanger"]?.state == .fatal })
            let status = try await running.status()
            #expect(status["hanger"]?.lastError.contains("not READY within its start window of 1.0 seconds") == true)
            #expect(status["hanger"]?.lastExit == "signal 15 (SIGTERM)")
            #expect(running.process.output.contains("not READY within its start window"))
        } catch {
            await running.cleanUp()
            throw error
        }
        await running.cleanUp()
    }

    @Test("restart of one process gives it a new pid; the others keep theirs, and its clients reconnect")
    func restartOne() async throws {
        let procfile =
            "metrics-collector: \(self.service)\ngate-evaluator: \(ServiceProcess.productsDirectory)/gate-evaluator "
            + "--config-dir \(ServiceProcess.repositoryDirectory)/config\n"
        let running = try await Self.start(procfile: procfile)
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
            let before = try await running.status()
            pids = before.values.map(\.pid)
            let serviceClient = RPCClient(socketPath: running.directory.appending("var/run/metrics-collector.sock"))
            let check = {
                try await serviceClient.unary(
                    Grpc_Health_V1_Health.Method.check,
                    Grpc_Health_V1_HealthCheckRequest(),
                    options: CallOptions(timeout: .seconds(10), waitForReady: true)
                ).status
            }
            #expect(try await check() == .serving)

            let restarted = try await running.call(Baton_Supervisor_V1_Supervisor.Method.restart, "metrics-collector")
            #expect(restarted.map(\.name) == ["metrics-collector"])
            #expect(await running.waitFor { $0["metrics-collector"]?.state == .ready })
            let after = try await running.status()
            pids += after.values.map(\.pid)
            #expect(after["metrics-collector"]?.pid != before["metrics-collector"]?.pid)
            #expect(after["gate-evaluator"]?.pid == before["gate-evaluator"]?.pid)
            #expect(!Self.alive(before["metrics-collector"]!.pid))
            #expect(try await check() == .serving, "the same client object reconnects by itself")
            await serviceClient.close()

            let error = await #expect(throws: RPCError.self) {
                try await running.call(Baton_Supervisor_V1_Supervisor.Method.restart, "nobody")
            }
            #expect(error?.code == .notFound)
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("Events streams the current state, then every state change as it happens")
    func events() async throws {
        let running = try await Self.start(procfile: "sleeper: sleep 1000\n")
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["sleeper"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            let events = try running.client.serverStream(
                Baton_Supervisor_V1_Supervisor.Method.events,
                Baton_Supervisor_V1_EventsRequest(),
            )
            var seen: [Baton_Supervisor_V1_ProcessState] = []
            try await withThrowingTaskGroup(of: Void.self) { group in
                for try await event in events {
                    #expect(event.process.name == "sleeper")
                    if event.previous == .unspecified {
                        #expect(event.process.state == .ready, "the snapshot comes first")
                        group.addTask {
                            _ = try await running.call(Baton_Supervisor_V1_Supervisor.Method.restart, "sleeper")
                        }
                        continue
                    }
                    #expect(event.previous == seen.last ?? .ready)
                    seen.append(event.process.state)
                    if event.process.state == .ready {
                        pids.append(event.process.pid)
                        break
                    }
                }
                try await group.waitForAll()
            }
            #expect(seen == [.stopping, .stopped, .starting, .ready])
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("SIGTERM to the supervisor: exit 0, no child left running, socket removed")
    func sigtermStopsEverything() async throws {
        let running = try await Self.start(procfile: "metrics-collector: \(self.service)\nsleeper: sleep 1000\n")
        #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
        let pids = try await running.status().values.map(\.pid)
        #expect(pids.count == 2 && pids.allSatisfy(Self.alive))
        running.process.signal(SIGTERM)
        #expect(await running.process.waitForExit() == 0)
        #expect(pids.allSatisfy { !Self.alive($0) })
        #expect(SocketFile.identity(of: running.socket) == nil)
        await running.cleanUp(pids: pids)
    }

    @Test("Shutdown over the control API stops everything and the supervisor exits 0")
    func shutdownCall() async throws {
        let running = try await Self.start(procfile: "sleeper: sleep 1000\n")
        #expect(await running.waitFor { $0["sleeper"]?.state == .ready })
        let pids = try await running.status().values.map(\.pid)
        _ = try await running.client.unary(
            Baton_Supervisor_V1_Supervisor.Method.shutdown,
            Baton_Supervisor_V1_ShutdownRequest(),
        )
        #expect(await running.process.waitForExit() == 0)
        #expect(pids.allSatisfy { !Self.alive($0) })
        await running.cleanUp(pids: pids)
    }

    @Test("SIGKILL to the supervisor: no child left running within 2 s")
    func sigkillTakesChildrenAlong() async throws {
        let running = try await Self.start(procfile: "metrics-collector: \(self.service)\nsleeper: sleep 1000\n")
        #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
        let pids = try await running.status().values.map(\.pid)
        running.process.signal(SIGKILL)
        #expect(await eventually(within: .seconds(2)) { pids.allSatisfy { !Self.alive($0) } })
        await running.cleanUp(pids: pids)
    }

    @Test("a process that ignores SIGTERM is SIGKILLed after its grace period (supervisor.yaml's, per process)")
    func stubbornProcessIsKilled() async throws {
        let running = try await Self.start(
            procfile: "stubborn: trap '' TERM; echo ready; while true; do sleep 0.1; done\n",
            supervisorYAML: "grace: 30\nprocesses:\n  stubborn:\n    grace: 1\n"
        )
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["stubborn"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            let clock = ContinuousClock()
            let started = clock.now
            let stopped = try await running.call(Baton_Supervisor_V1_Supervisor.Method.stop, "stubborn")
            let took = clock.now - started
            #expect(stopped.first?.state == .stopped)
            #expect(stopped.first?.lastExit == "signal 9 (SIGKILL)")
            #expect(took >= .seconds(1) && took < .seconds(10), "took \(took)")
            #expect(running.process.output.contains("still running after the grace period; sending SIGKILL"))
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test(
        ".env values reach the processes, with BATON_RUN_DIR, BATON_DATA_DIR, BATON_CONFIG_DIR and BATON_PROCESS_NAME"
    )
    func environmentReachesProcesses() async throws {
        let running = try await Self.start(
            procfile: "show: echo \"greeting=$GREETING name=$BATON_PROCESS_NAME run=$BATON_RUN_DIR "
                + "config=$BATON_CONFIG_DIR\"; sleep 1000\n",
            dotEnv: "# test\nGREETING=\"hello there\"\n",
            arguments: ["--config-dir", "elsewhere"]
        )
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["show"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            let expected =
                "show | greeting=hello there name=show run=\(running.directory.path)/var/run "
                + "config=\(running.directory.path)/elsewhere"
            #expect(await eventually { running.process.output.contains(expected) }, "\(running.process.output)")
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    /// The descriptors process `pid` holds open.
    static func descriptors(of pid: Int32) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).sorted()
    }

    @Test("a process inherits none of the supervisor's descriptors, only its standard input, output and error")
    func noInheritedDescriptors() async throws {
        // Without the closing, the child holds copies of the supervisor's sockets (its listener, a batonctl
        // connection open at that moment), and a connection the supervisor closes stays open.
        let running = try await Self.start(procfile: "idle: sleep 1000\n")
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["idle"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            #expect(pids.count == 1 && Self.descriptors(of: pids[0]) == ["0", "1", "2"], "\(pids)")
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("a program the tests start inherits none of the test process's descriptors")
    func testKitSpawnsClean() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let held = open("/dev/null", O_RDONLY)  // no O_CLOEXEC: a child would inherit it, as it did NIO's sockets
        defer { close(held) }
        let process = try ServiceProcess.start(
            path: "/bin/sleep",
            arguments: ["1000"],
            workingDirectory: directory.path,
            logPath: directory.appending("sleep.log")
        )
        defer { process.stop() }
        // The shell that starts it has become `sleep` once /proc shows sleep's command line.
        #expect(
            await eventually {
                (try? String(contentsOfFile: "/proc/\(process.pid)/cmdline", encoding: .utf8))?.hasPrefix("/bin/sleep")
                    == true
            }
        )
        // Right after the exec, the dynamic loader briefly holds the libraries it maps (fd 3): wait for it to be
        // done. An inherited descriptor would stay, so this still fails when one leaks.
        #expect(await eventually(within: .seconds(10)) { Self.descriptors(of: process.pid) == ["0", "1", "2"] })
        #expect(Self.descriptors(of: process.pid) == ["0", "1", "2"])
    }

    @Test("a bad Procfile is refused before anything starts, with its line number")
    func badProcfileRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try Self.write("router: true\n\nrouter: false\n", to: directory.appending("Procfile"))
        let result = try await ServiceProcess.run(
            path: ServiceProcess.productsDirectory + "/supervisor",
            in: directory
        )
        #expect(result.status == 1)
        #expect(result.output.contains("Procfile:3: duplicate process name 'router' (first on line 1)"))
        #expect(!result.output.contains("starting"))
    }
}
