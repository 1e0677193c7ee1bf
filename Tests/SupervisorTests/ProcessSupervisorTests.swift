import BatonProto
import BatonRuntime
import BatonTestKit
import Logging
import NIOPosix
import Synchronization
import Testing

@testable import SupervisorKit

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's actor, run in process on a Procfile of real processes.
@Suite("Process supervisor")
struct ProcessSupervisorTests {
    @Test("a cancelled supervisor still stops its processes and returns: reaping never holds the actor")
    func cancelledSupervisorStopsItsProcesses() async {
        // In a process of its own: the supervisor reaps every child of its process (waitpid(-1)), which would take
        // the exits of other tests' processes from them.
        await #expect(processExitsWith: .success) {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            var logger = Logger(label: "supervisor-test")
            logger.logLevel = .critical
            let supervisor = ProcessSupervisor(
                settings: ProcessSupervisor.Settings(
                    procfile: try Procfile.parse("sleeper: exec sleep 300\n"),
                    environment: ProcessEnvironment.current,
                    workingDirectory: directory.path,
                    runDirectory: directory.path,
                    grace: .seconds(2)
                ),
                logger: logger,
                spawnLoop: MultiThreadedEventLoopGroup.singleton.next()
            )
            let returned = Atomic<Bool>(false)
            let task = Task {
                try? await supervisor.run()
                returned.store(true, ordering: .releasing)
            }
            guard await eventually(within: .seconds(20), { await supervisor.status().first?.pid ?? 0 > 0 }) else {
                exit(2)
            }
            let pid = await supervisor.status().first?.pid ?? 0
            // Cancelled, not shut down gracefully: as when another service of its group fails. Reaping then goes on
            // while the supervisor stops its processes; if it held the actor, stopAll could never run.
            task.cancel()
            let stopped = await eventually(within: .seconds(20)) { returned.load(ordering: .acquiring) }
            let gone = kill(pid, 0) != 0
            kill(pid, SIGKILL)
            exit(stopped && gone ? 0 : 1)
        }
    }
}

/// Lines through a pipe get the supervisor's time, unless they carry their own.
@Suite("Child output")
struct ChildOutputTests {
    @Test(
        "a line that starts with its own time gets no second one",
        arguments: [
            ("2026-12-01T09:30:00+0000 info router: ready", true),
            ("2026-12-01T09:30:00.123Z hello", true),
            ("tick 1", false),
            ("2026-12-01 09:30:00 not ISO", false),
            ("", false),
        ]
    )
    func stamped(line: String, stamped: Bool) {
        #expect(ChildOutput.isStamped(line) == stamped)
    }
}
