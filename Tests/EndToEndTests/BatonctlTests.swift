import BatonProto
import BatonRuntime
import BatonTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// batonctl against a running supervisor, and without one.
@Suite("batonctl")
struct BatonctlTests {
    var batonctl: String { ServiceProcess.productsDirectory + "/batonctl" }

    func run(
        _ arguments: [String],
        in running: SupervisorTests.Running
    ) async throws -> (status: Int32?, output: String) {
        try await ServiceProcess.run(path: self.batonctl, arguments: arguments, in: running.directory)
    }

    @Test("status, restart, stop, start and health against a running supervisor")
    func commands() async throws {
        let procfile = "metrics-collector: \(ServiceProcess.productsDirectory)/metrics-collector\nsleeper: sleep 1000\n"
        let running = try await SupervisorTests.start(procfile: procfile)
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
            pids = try await running.status().values.map(\.pid)

            let status = try await self.run(["status"], in: running)
            #expect(status.status == 0, "\(status.output)")
            let lines = status.output.split(separator: "\n")
            #expect(lines.first?.hasPrefix("NAME") == true)
            #expect(lines.contains { $0.hasPrefix("metrics-collector ") && $0.contains("READY") })

            let json = try await self.run(["status", "--json"], in: running)
            #expect(json.output.contains("\"name\":\"sleeper\""))
            #expect(json.output.contains("\"state\":\"READY\""))
            #expect(json.output.contains("\"restarts\":0") && json.output.contains("\"lastExit\":\"\""))

            let restarted = try await self.run(["restart", "metrics-collector"], in: running)
            #expect(restarted.status == 0)
            #expect(restarted.output.contains("READY"), "restart waits until the process is READY: \(restarted.output)")
            pids += try await running.status().values.map(\.pid)

            let health = try await self.run(["health"], in: running)
            #expect(health.status == 0, "\(health.output)")
            let healthLines = health.output.split(separator: "\n")
            #expect(healthLines.contains { $0.hasPrefix("metrics-collector ") && $0.hasSuffix(" SERVING") })
            #expect(healthLines.contains { $0.hasPrefix("supervisor ") && $0.hasSuffix(" SERVING") })

            let events = try ServiceProcess.start(
                path: self.batonctl,
                arguments: ["events"],
                workingDirectory: running.directory.path,
                logPath: running.directory.appending("events.log")
            )
            defer { events.stop() }
            #expect(await eventually { events.output.contains("  sleeper  READY  (pid ") })
            let stopped = try await self.run(["stop", "sleeper"], in: running)
            #expect(stopped.output.contains("STOPPED"))
            #expect(await eventually { events.output.contains("  sleeper  READY -> STOPPING") })
            #expect(
                await eventually { events.output.contains("  sleeper  STOPPING -> STOPPED  (last exit: signal 15") }
            )
            let notAllReady = try await self.run(["status"], in: running)
            #expect(notAllReady.status == 1, "status is non-zero while a process is not READY")

            let unknown = try await self.run(["restart", "nobody"], in: running)
            #expect(unknown.status == 2)
            #expect(unknown.output.contains("NOT_FOUND: no process named 'nobody' in the Procfile"))

            let started = try await self.run(["start", "all"], in: running)
            #expect(started.status == 0)
            #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
            pids += try await running.status().values.map(\.pid)
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test(
        "restart of a process that cannot start exits 1 with its state, last error and last lines; health lists a process the supervisor stopped"
    )
    func failedRestartAndStoppedHealth() async throws {
        let procfile =
            "metrics-collector: \(ServiceProcess.productsDirectory)/metrics-collector\n"
            + "flaky: sh -c 'test -f broken && { echo \"destinations.yaml:3:5: bad value\"; exit 1; }; exec sleep 1000'\n"
        let running = try await SupervisorTests.start(procfile: procfile)
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0.values.allSatisfy { $0.state == .ready } })
            pids = try await running.status().values.map(\.pid)
            try SupervisorTests.write("", to: running.directory.appending("broken"))
            let restarted = try await self.run(["restart", "flaky"], in: running)
            #expect(restarted.status == 1, "\(restarted.output)")
            #expect(restarted.output.contains("batonctl: flaky is BACKOFF, not READY; last exit: exit status 1"))
            #expect(restarted.output.contains("destinations.yaml:3:5: bad value"))

            let stopped = try await self.run(["stop", "metrics-collector"], in: running)
            #expect(stopped.status == 0, "\(stopped.output)")
            let health = try await self.run(["health"], in: running)
            #expect(health.status == 1, "\(health.output)")
            let lines = health.output.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("metrics-collector ") && $0.contains("STOPPED") }, "\(health.output)")
            #expect(lines.contains { $0.hasPrefix("supervisor ") && $0.hasSuffix(" SERVING") })
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("status names a process that serves an older configuration than its files, and why, and exits 1")
    func statusSaysStaleConfiguration() async throws {
        let procfile = "gate-evaluator: \(ServiceProcess.productsDirectory)/gate-evaluator\n"
        let running = try await SupervisorTests.start(procfile: procfile) { directory in
            mkdir(directory.appending("config"), 0o755)
            mkdir(directory.appending("config/workflows"), 0o755)
            let general = try TextFile.read(ServiceProcess.repositoryDirectory + "/config/workflows/general.yaml")
            try SupervisorTests.write(general, to: directory.appending("config/workflows/general.yaml"))
        }
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["gate-evaluator"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            #expect(try await self.run(["status"], in: running).status == 0)
            let file = running.directory.appending("config/workflows/general.yaml")
            try SupervisorTests.write(try TextFile.read(file) + "colour: blue\n", to: file)
            let restarted = try await self.run(["restart", "gate-evaluator"], in: running)
            #expect(restarted.status == 0, "it serves the last valid version: \(restarted.output)")
            pids += try await running.status().values.map(\.pid)
            let status = try await self.run(["status"], in: running)
            #expect(status.status == 1)
            #expect(
                status.output.contains(
                    "gate-evaluator serves an older configuration than its files: config/workflows/general.yaml:"
                ),
                "\(status.output)"
            )
            #expect(status.output.contains("unknown key 'colour'"))
            #expect(status.output.contains("(serving general from "))
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("logs prints the kept lines (-n for the last N), and -f follows new ones")
    func logs() async throws {
        // "later" waits for the file "go", which the test creates once it has checked the kept lines.
        let procfile =
            "ticker: for i in 1 2 3 4 5; do echo tick $i; done; while [ ! -e go ]; do sleep 0.05; done; echo later; "
            + "sleep 1000\n"
        let running = try await SupervisorTests.start(procfile: procfile)
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["ticker"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)
            #expect(await eventually { running.process.output.contains("tick 5") })
            let follow = try ServiceProcess.start(
                path: self.batonctl,
                arguments: ["logs", "ticker", "-f"],
                workingDirectory: running.directory.path,
                logPath: running.directory.appending("follow.log")
            )
            defer { follow.stop() }
            let last = try await self.run(["logs", "ticker", "-n", "2"], in: running)
            #expect(last.status == 0)
            #expect(last.output == "tick 4\ntick 5\n")
            #expect(await eventually { follow.output.contains("tick 1\n") })
            try SupervisorTests.write("", to: running.directory.appending("go"))
            #expect(await eventually { follow.output.contains("later\n") })
            #expect(follow.poll() == nil, "-f keeps running")

            // The supervisor's own lines, and everything interleaved with each line's source in front.
            let own = try await self.run(["logs", "supervisor"], in: running)
            #expect(own.status == 0)
            let ownLines = own.output.split(separator: "\n")
            #expect(ownLines.contains { $0.contains("baton.child=ticker") && $0.hasSuffix(" starting") })
            #expect(ownLines.contains { $0.contains("baton.child=ticker") && $0.hasSuffix(" ready") }, "\(own.output)")
            let all = try await self.run(["logs", "all"], in: running)
            #expect(all.output.contains("ticker | tick 1\n"))
            #expect(all.output.contains("supervisor | "), "\(all.output)")

            let unknown = try await self.run(["logs", "nobody"], in: running)
            #expect(unknown.status == 2)
            #expect(unknown.output.contains("NOT_FOUND"))
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("call: any method with JSON in and out, streaming, and each error")
    func call() async throws {
        let running = try await SupervisorTests.start(
            procfile: "metrics-collector: \(ServiceProcess.productsDirectory)/metrics-collector\n"
        )
        var pids: [Int32] = []
        do {
            #expect(await running.waitFor { $0["metrics-collector"]?.state == .ready })
            pids = try await running.status().values.map(\.pid)

            let list = try await self.run(["call", "supervisor", "--list"], in: running)
            #expect(list.status == 0)
            #expect(
                list.output.contains(
                    "baton.supervisor.v1.Supervisor.Logs(baton.supervisor.v1.LogsRequest) "
                        + "returns (stream baton.supervisor.v1.LogLine)"
                )
            )
            let check = try await self.run(
                ["call", "metrics-collector", "grpc.health.v1.Health.Check", "{}"],
                in: running
            )
            #expect(check.status == 0)
            #expect(check.output == "{\"status\":\"SERVING\"}\n")
            let status = try await self.run(["call", "supervisor", "Status"], in: running)  // stdin is empty: {}
            #expect(status.output.hasPrefix("{\"processes\":[{\"name\":\"metrics-collector\",\"state\":\"READY\""))

            let unknownField = try await self.run(["call", "supervisor", "Stop", "{\"nme\":\"router\"}"], in: running)
            #expect(unknownField.status == 2)
            #expect(unknownField.output.contains("unknown field 'nme' for baton.supervisor.v1.ProcessRequest"))
            let malformed = try await self.run(["call", "supervisor", "Stop", "{name"], in: running)
            #expect(malformed.status == 2)
            #expect(
                malformed.output.contains(
                    "the request is not JSON; expected a JSON object ({...}) for baton.supervisor.v1.ProcessRequest"
                )
            )
            let wrongType = try await self.run(["call", "supervisor", "Stop", "{\"name\":5}"], in: running)
            #expect(wrongType.status == 2)
            #expect(
                wrongType.output.contains(
                    "field 'name' of baton.supervisor.v1.ProcessRequest: expected a string, not the number 5"
                )
            )
            let described = try await self.run(["call", "router", "--describe", "Route"], in: running)
            #expect(described.status == 0)
            #expect(described.output.contains("\n  handoffId  string  required; the key of Explain\n"))
            #expect(described.output.contains("one of: PRIORITY_UNSPECIFIED, PRIORITY_LOW, PRIORITY_NORMAL"))
            let array = try await self.run(["call", "supervisor", "Stop", "[]"], in: running)
            #expect(array.output.contains("the request is an array; expected a JSON object ({...})"))
            for arguments in [["call", "routr", "Route", "{}"], ["call", "routr", "--list"]] {
                let misspelled = try await self.run(arguments, in: running)
                #expect(misspelled.status == 2)
                #expect(
                    misspelled.output.contains(
                        "there is no process 'routr'; the processes are context-assembler, gate-evaluator, "
                            + "metrics-collector, router, supervisor"
                    )
                )
            }
            let unknownMethod = try await self.run(["call", "metrics-collector", "Route"], in: running)
            #expect(unknownMethod.status == 2)
            #expect(
                unknownMethod.output.contains(
                    "metrics-collector has no method 'Route'; batonctl call metrics-collector --list"
                )
            )
            let failed = try await self.run(["call", "supervisor", "Stop", "{\"name\":\"nobody\"}"], in: running)
            #expect(failed.status == 1)
            #expect(failed.output.contains("NOT_FOUND: no process named 'nobody'"))

            let watch = try ServiceProcess.start(
                path: self.batonctl,
                arguments: ["call", "metrics-collector", "Watch"],
                workingDirectory: running.directory.path,
                logPath: running.directory.appending("watch.log")
            )
            defer { watch.stop() }
            #expect(await eventually { watch.output == "{\"status\":\"SERVING\"}\n" })
            #expect(watch.poll() == nil, "a streaming call prints until interrupted")
        } catch {
            await running.cleanUp(pids: pids)
            throw error
        }
        await running.cleanUp(pids: pids)
    }

    @Test("validate checks the workflows and destinations as the processes read them, with no process running")
    func validate() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let repository = ServiceProcess.repositoryDirectory + "/config"
        let shipped = try await ServiceProcess.run(
            path: self.batonctl,
            arguments: ["validate", "--config-dir", repository],
            in: directory
        )
        #expect(shipped.status == 0, "the example configuration validates: \(shipped.output)")
        #expect(shipped.output.contains("/workflows/billing-support.yaml: ok, workflow billing-support with "))
        #expect(shipped.output.contains("/destinations.yaml: ok, "))

        let general = try TextFile.read(repository + "/workflows/general.yaml")
        try SupervisorTests.write(general + "colour: blue\n", to: directory.appending("general.yaml"))
        try SupervisorTests.write(
            "destinations:\n  - id: x\n    agents: lots\n",
            to: directory.appending("destinations.yaml")
        )
        let broken = try await ServiceProcess.run(
            path: self.batonctl,
            arguments: ["validate", "general.yaml", "destinations.yaml"],
            in: directory
        )
        #expect(broken.status == 1)
        let lines = broken.output.split(separator: "\n")
        #expect(
            lines.contains { $0.hasPrefix("general.yaml:") && $0.contains("unknown key 'colour'") },
            "\(broken.output)"
        )
        #expect(lines.contains { $0.hasPrefix("destinations.yaml:3:") }, "\(broken.output)")
    }

    @Test("without a supervisor, batonctl says so and how to start it, in one line, and health says which is down")
    func noSupervisor() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let status = try await ServiceProcess.run(
            path: self.batonctl,
            arguments: ["status", "--run-dir", "run"],
            in: directory
        )
        #expect(status.status == 2)
        #expect(
            status.output
                == "batonctl: the supervisor is not running (nothing answers on run/supervisor.sock); "
                + "start Baton with scripts/run.sh\n"
        )
        let health = try await ServiceProcess.run(
            path: self.batonctl,
            arguments: ["health", "metrics-collector"],
            environment: ["BATON_RUN_DIR": "run"],
            in: directory
        )
        #expect(health.status == 1)
        #expect(
            health.output.contains("metrics-collector  UNAVAILABLE: cannot connect to 'run/metrics-collector.sock'")
        )
        // The README's rule: 2 when the command could not run, whichever process it needs, and for a wrong
        // command line (ArgumentParser's own is 64).
        let report = try await ServiceProcess.run(
            path: self.batonctl,
            arguments: ["report", "--run-dir", "run"],
            in: directory
        )
        #expect(report.status == 2, "\(report.output)")
        #expect(report.output.contains("metrics-collector does not answer on run/metrics-collector.sock"))
        let missing = try await ServiceProcess.run(path: self.batonctl, arguments: ["brief"], in: directory)
        #expect(missing.status == 2)
        #expect(missing.output.contains("Missing expected argument '<handoff>'"))
    }
}
