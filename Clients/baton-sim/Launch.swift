import BatonProto
import BatonRPC
import BatonRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `baton-sim --start`: Baton's processes under their supervisor in a scratch directory of their own (sockets,
/// databases, logs), from the executables beside `baton-sim` and the given configuration; stopped and removed
/// when the run ends.
struct ScratchBaton {
    /// The processes of the repository's Procfile, in its order.
    static let processes = ["context-assembler", "gate-evaluator", "router", "metrics-collector"]

    let directory: String
    let supervisor: Int32
    var runDirectory: String { self.directory + "/run" }
    var log: String { self.directory + "/supervisor.log" }

    /// Starts the supervisor with every process, and waits until all are READY (two minutes at most).
    static func start(config: String) async throws -> ScratchBaton {
        for name in ["supervisor"] + Self.processes {
            guard FileManager.default.isExecutableFile(atPath: Benchmarking.sibling(name)) else {
                throw SimulationError(
                    "--start needs \(name) beside baton-sim (\(Benchmarking.sibling(name))); build it first with "
                        + "swift build -c release"
                )
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: config, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SimulationError("--config-dir \(config) is not a directory; expected Baton's configuration")
        }
        var template = Array("/tmp/baton-sim.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SimulationError("cannot make a scratch directory in /tmp: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        let procfile = Self.processes.map { "\($0): \(Benchmarking.sibling($0))" }.joined(separator: "\n") + "\n"
        try procfile.write(toFile: directory + "/Procfile", atomically: true, encoding: .utf8)
        let absoluteConfig = URL(fileURLWithPath: config).standardizedFileURL.path
        let pid = try Benchmarking.spawnSibling(
            "supervisor",
            [
                "--procfile", directory + "/Procfile", "--run-dir", directory + "/run", "--data-dir",
                directory + "/data", "--config-dir", absoluteConfig, "--grace", "5",
            ],
            output: directory + "/supervisor.log"
        )
        let baton = ScratchBaton(directory: directory, supervisor: pid)
        do {
            try await baton.waitUntilReady()
        } catch {
            await baton.stop(keep: false, failed: false)
            throw error
        }
        return baton
    }

    /// Every process READY, as the supervisor reports it.
    private func waitUntilReady() async throws {
        let client = RPCClient(socketPath: BatonConfiguration.socketPath(of: "supervisor", in: self.runDirectory))
        defer { Task { await client.close() } }
        var status: Int32 = 0
        try await Baton_Supervisor_V1_Supervisor.Client(client).waitUntilAllReady(
            log: { self.tail() },
            exited: { waitpid(self.supervisor, &status, WNOHANG) == self.supervisor }
        )
    }

    /// The last lines of the supervisor's log.
    func tail(_ lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: self.log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Stops the supervisor (which stops every process) and removes the scratch directory, unless `keep`. After
    /// a `failed` run, the end of the supervisor's log is printed first.
    func stop(keep: Bool, failed: Bool) async {
        kill(self.supervisor, SIGTERM)
        let clock = ContinuousClock()
        let end = clock.now + .seconds(30)
        var status: Int32 = 0
        while waitpid(self.supervisor, &status, WNOHANG) == 0 {
            guard clock.now < end else {
                kill(self.supervisor, SIGKILL)
                waitpid(self.supervisor, &status, 0)
                break
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        if failed {
            standardError("baton-sim: the end of the supervisor's log:\n\(self.tail())\n")
        }
        if keep {
            standardError("baton-sim: kept \(self.directory) (sockets, databases, supervisor.log) for a look\n")
        } else {
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }
}

extension Baton_Supervisor_V1_Supervisor.Client {
    /// Waits until the supervisor reports every process READY, for two minutes at most; fails at once when one is
    /// FATAL or the supervisor has `exited`, with the end of its `log` (if it has one to show).
    func waitUntilAllReady(log: () -> String = { "" }, exited: () -> Bool = { false }) async throws {
        let clock = ContinuousClock()
        let end = clock.now + .seconds(120)
        var last = "no answer from the supervisor"
        let tail = { (text: String) in text.isEmpty ? "" : "; its log:\n" + text }
        while clock.now < end {
            if exited() {
                throw SimulationError("the supervisor exited" + tail(log()))
            }
            if let reply = try? await self.status(.init(), options: CallOptions(timeout: .seconds(5))) {
                if let fatal = reply.processes.first(where: { $0.state == .fatal }) {
                    throw SimulationError("\(fatal.name) did not start (\(fatal.lastError))" + tail(log()))
                }
                let waiting = reply.processes.filter { $0.state != .ready }
                if !reply.processes.isEmpty, waiting.isEmpty {
                    return
                }
                last = waiting.map { "\($0.name) \($0.state)" }.joined(separator: ", ")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw SimulationError("Baton's processes were not all READY within 2 minutes (\(last))" + tail(log()))
    }
}
