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

/// `baton-sim`: a simulated contact centre (callers, the voice AI, telephony and the humans at each destination)
/// run against the real, running processes, and the essay's test measured by Baton's own metrics collector.
@main
struct BatonSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-sim",
        abstract: "Run a simulated contact centre against the running Baton processes and report the essay's test.",
        discussion: """
            Every party outside Baton is simulated: callers with facts and patience, the voice AI following a
            script per workflow, the telephony, and a pool of humans per destination who read the brief, answer,
            greet, ask for what they still need and hand back. The figures come from Baton's metrics collector.

            --mode handoff uses Baton as designed; --mode failover runs the same callers and humans the way most AI
            agents work: no gates, an escalation only when the AI is confused or the caller insists, and a blind
            transfer, so the human asks for everything. --compare runs both, one after the other.

            --speed N makes the simulated parties' delays N times shorter. They are reported at full scale: the
            simulator stamps the humans' events with their full-scale times, while the platform's own latency
            between them is real and never scaled.

            Exit status: 0 done, 1 a call failed or a process did not answer, 2 wrong usage or an invalid scenario.
            """
    )

    @Option(help: "The scenario file.") var scenario = "config/simulations/default.yaml"
    @Option(help: "handoff or failover.") var mode = "handoff"
    @Flag(help: "Run both modes and print them side by side.") var compare = false
    @Option(help: "Calls to run (default: the scenario's).") var calls: Int?
    @Option(
        help:
            "Calls at once (default: the scenario's); given here, the calls run this many at once, without the scenario's arrivals."
    )
    var concurrency: Int?
    @Option(help: "Simulated delays run this many times faster.") var speed = 1.0
    @Option(help: "Seed of the draws (default: the scenario's).") var seed: UInt64?
    @Option(help: "Directory of the sockets (default: $BATON_RUN_DIR, else var/run).") var runDir: String?
    @Flag(help: "Start Baton's processes under their supervisor in a scratch directory, and stop them at the end.")
    var start = false
    @Option(help: "With --start: the configuration directory.") var configDir = "config"
    @Flag(help: "Kill a random Baton process with SIGKILL every few seconds (through the supervisor's pids).")
    var chaos = false
    @Option(help: "With --chaos: the mean real seconds between kills.") var chaosEvery = 5.0
    @Flag(help: "With --start: keep the scratch directory (sockets, databases, supervisor.log) at the end.")
    var keep = false
    @Flag(help: "Print the figures as JSON.") var json = false
    @Option(help: "Also write a one-page HTML report with SVG charts to this file.") var html: String?

    mutating func validate() throws {
        guard Mode(rawValue: self.mode) != nil else {
            throw ValidationError("--mode '\(self.mode)' is not a mode; expected handoff or failover")
        }
        guard self.speed >= 1, self.speed.isFinite else {
            throw ValidationError("--speed \(self.speed) is not a speed-up; expected a number of at least 1")
        }
        if let calls = self.calls, calls < 1 {
            throw ValidationError("--calls \(calls): expected at least 1")
        }
        if let concurrency = self.concurrency, concurrency < 1 {
            throw ValidationError("--concurrency \(concurrency): expected at least 1")
        }
        guard self.chaosEvery >= 0.5, self.chaosEvery.isFinite else {
            throw ValidationError("--chaos-every \(self.chaosEvery): expected at least 0.5 seconds")
        }
        if self.start, self.runDir != nil {
            throw ValidationError("--start makes its own run directory; leave out --run-dir")
        }
    }

    func run() async throws {
        var scenario: Scenario
        do {
            scenario = try Scenario.parse(try TextFile.read(self.scenario), file: self.scenario)
        } catch let error as InvalidConfigFile {
            standardError("baton-sim: the scenario is invalid:\n\(error)\n")
            throw ExitCode(2)
        } catch {
            standardError("baton-sim: cannot read the scenario \(self.scenario): \(error)\n")
            throw ExitCode(2)
        }
        scenario.calls = self.calls ?? scenario.calls
        if let concurrency = self.concurrency {
            scenario.concurrency = concurrency
            scenario.arrivals = []
        }
        scenario.seed = self.seed ?? scenario.seed
        var scratch: ScratchBaton?
        if self.start {
            do {
                scratch = try await ScratchBaton.start(config: self.configDir)
            } catch let error as SimulationError {
                standardError("baton-sim: \(error)\n")
                throw ExitCode(1)
            }
        }
        let runDirectory =
            scratch?.runDirectory ?? self.runDir
            ?? ProcessEnvironment.current["BATON_RUN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "var/run"
        // A lost connection is what --chaos is about, and every call is retried: the clients keep quiet about it.
        var logger = Logger(label: "baton-sim")
        logger.logLevel = .error
        let clients = Dictionary(
            uniqueKeysWithValues: ["context-assembler", "router", "metrics-collector", "supervisor"].map {
                ($0, RPCClient(socketPath: BatonConfiguration.socketPath(of: $0, in: runDirectory), logger: logger))
            }
        )
        var failed = false
        do {
            failed = try await self.simulate(scenario, clients: clients, runDirectory: runDirectory)
        } catch {
            for client in clients.values {
                await client.close()
            }
            await scratch?.stop(keep: self.keep, failed: true)
            throw error
        }
        for client in clients.values {
            await client.close()
        }
        await scratch?.stop(keep: self.keep, failed: failed)
        if failed {
            throw ExitCode(1)
        }
    }

    /// Runs the modes, prints the report; true when a call failed or something was lost.
    private func simulate(_ scenario: Scenario, clients: [String: RPCClient], runDirectory: String) async throws -> Bool
    {
        let assembler = Baton_Context_V1_ContextAssembler.Client(clients["context-assembler"]!)
        let chaos =
            self.chaos
            ? Chaos(
                supervisor: Baton_Supervisor_V1_Supervisor.Client(clients["supervisor"]!),
                every: .milliseconds(Int64(self.chaosEvery * 1000))
            ) : nil
        if let chaos {
            do {
                try await chaos.waitUntilReady()
            } catch {
                standardError(
                    "baton-sim: --chaos needs Baton under its supervisor, at \(runDirectory)/supervisor.sock "
                        + "(start it with scripts/run.sh, or use --start): \(error)\n"
                )
                throw ExitCode(2)
            }
        }
        let modes = self.compare ? Mode.allCases : [Mode(rawValue: self.mode) ?? .handoff]
        var reports: [Report] = []
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        for mode in modes {
            let simulation = Simulation(
                scenario: scenario,
                mode: mode,
                speed: self.speed,
                assembler: assembler,
                router: Baton_Routing_V1_Router.Client(clients["router"]!),
                runID: runID
            )
            let started = ContinuousClock.now
            let quiet = self.json || isatty(2) != 1
            let total = scenario.calls
            let killedBefore = chaos?.kills.count ?? 0
            let killer = chaos.map { chaos in Task { await chaos.run(seed: scenario.seed) } }
            let outcomes: [CallOutcome]
            do {
                outcomes = try await simulation.run { progress in
                    if !quiet {
                        let kills = chaos.map { $0.kills.count - killedBefore }
                        standardError("\r" + Self.progressLine(mode, progress, total: total, kills: kills))
                    }
                }
            } catch let error as SimulationError {
                killer?.cancel()
                standardError("baton-sim: \(error)\n")
                throw ExitCode(2)
            } catch {
                killer?.cancel()
                standardError(
                    "baton-sim: the processes did not answer (\(error)); are they running in \(runDirectory)?\n"
                )
                throw ExitCode(1)
            }
            killer?.cancel()
            if !quiet {
                standardError("\n")
            }
            try await chaos?.waitUntilReady()
            let metrics = Baton_Metrics_V1_MetricsCollector.Client(clients["metrics-collector"]!)
            let handoffs = try await Self.collect(outcomes, from: metrics)
            let audit = try await Audit.check(outcomes, handoffs: handoffs, assembler: assembler)
            reports.append(
                Report(
                    mode: mode,
                    outcomes: outcomes,
                    handoffs: handoffs,
                    took: ContinuousClock.now - started,
                    audit: audit,
                    kills: chaos?.kills.dropFirst(killedBefore).map(\.name) ?? []
                )
            )
        }
        let memory = await Self.peakMemory(Baton_Supervisor_V1_Supervisor.Client(clients["supervisor"]!))
        if self.json {
            print(Report.json(reports, memory: memory))
        } else {
            print(Report.table(reports))
            if !memory.isEmpty {
                print(
                    "peak RSS (this run of each process): "
                        + memory.map { String(format: "%@ %.1f MiB", $0.0, $0.1) }.joined(separator: ", ")
                )
            }
        }
        if let html = self.html {
            do {
                try HTMLReport.render(reports, scenario: self.scenario).write(
                    toFile: html,
                    atomically: true,
                    encoding: .utf8
                )
            } catch {
                standardError("baton-sim: cannot write \(html): \(error)\n")
                return true
            }
        }
        var failed = false
        let failures = reports.flatMap(\.outcomes).filter { $0.end == .failed }
        if !failures.isEmpty {
            standardError(
                "baton-sim: \(failures.count) calls failed; the first: \(failures[0].callID): \(failures[0].failure)\n"
            )
            failed = true
        }
        for report in reports where report.audit.lost > 0 || !report.audit.doubled.isEmpty {
            standardError(
                "baton-sim: \(report.mode.rawValue): \(report.audit.lost) lost, \(report.audit.doubled.count) "
                    + "counted twice; for example: "
                    + (report.audit.lostEvents + report.audit.lostTimeline + report.audit.doubled).prefix(3)
                    .joined(separator: "; ") + "\n"
            )
            failed = true
        }
        return failed
    }

    /// Each process's peak resident memory, from the pids its supervisor reports (a process restarted by --chaos
    /// counts from its restart); empty without a supervisor.
    static func peakMemory(_ supervisor: Baton_Supervisor_V1_Supervisor.Client) async -> [(String, Double)] {
        guard let status = try? await supervisor.status(.init(), options: CallOptions(timeout: .seconds(5))) else {
            return []
        }
        return status.processes.compactMap { process in
            process.pid > 0 ? Benchmarking.residentMiB(of: process.pid, peak: true).map { (process.name, $0) } : nil
        }
    }

    /// `handoff [########............] 120/200 calls, 8 in handoff, p90 live human 4.3 s`
    static func progressLine(_ mode: Mode, _ progress: Progress, total: Int, kills: Int?) -> String {
        let width = 24
        let filled = total == 0 ? 0 : min(width, progress.done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let p90 = progress.liveP90.map { String(format: "%.1f s", $0 / 1000) } ?? "-"
        let chaos = kills.map { ", \($0) killed" } ?? ""
        return "\(mode.rawValue) [\(bar)] \(progress.done)/\(total) calls, \(progress.inHandoff) in handoff, "
            + "p90 live human \(p90)\(chaos)   "
    }

    /// Each handoff as Baton's metrics collector holds it, once its timeline has arrived (the assembler sends it
    /// through its outbox, after the reply): waits until each has its call_ended, for at most a minute.
    static func collect(
        _ outcomes: [CallOutcome],
        from metrics: Baton_Metrics_V1_MetricsCollector.Client
    ) async throws -> [String: Baton_Metrics_V1_Handoff] {
        var found: [String: Baton_Metrics_V1_Handoff] = [:]
        let ids = outcomes.map(\.handoffID).filter { !$0.isEmpty }
        let clock = ContinuousClock()
        let end = clock.now + .seconds(60)
        for id in ids {
            while true {
                let handoff = try? await metrics.getHandoff(.with { $0.handoffID = id }, options: Simulation.deadline)
                if let handoff, handoff.timeline.contains(where: { $0.kind == .callEnded }) || clock.now > end {
                    found[id] = handoff
                    break
                }
                if clock.now > end {
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return found
    }
}

/// Writes `text` as it is to standard error.
func standardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
