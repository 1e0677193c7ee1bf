import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import SwiftProtobuf
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--chaos`: kills a random Baton process with SIGKILL every few seconds, through the pid its supervisor
/// reports, and lets the supervisor restart it.
final class Chaos: Sendable {
    struct Kill: Sendable {
        var name: String
        var pid: Int32
        var at: Date
    }

    let supervisor: Baton_Supervisor_V1_Supervisor.Client
    /// The mean real time between kills.
    let every: Duration
    private let killed = Mutex<[Kill]>([])

    /// A process must have been READY this long before it is killed again: the supervisor counts a start that does
    /// not stay READY for 10 s as failed, and five in a row make the process FATAL, which is not what this tests.
    static let settled: Int64 = 11_000

    init(supervisor: Baton_Supervisor_V1_Supervisor.Client, every: Duration) {
        self.supervisor = supervisor
        self.every = every
    }

    var kills: [Kill] { self.killed.withLock { $0 } }

    /// Kills until cancelled, one process at a time, only while every process is READY.
    func run(seed: UInt64) async {
        var random = SplitMix64(seed: seed ^ 0xC4A05)
        let mean = Simulation.milliseconds(self.every)
        while !Task.isCancelled {
            let pause = Double.random(in: 0.5...1.5, using: &random) * mean
            try? await Task.sleep(for: .milliseconds(Int64(pause)))
            guard !Task.isCancelled,
                let status = try? await self.supervisor.status(.init(), options: CallOptions(timeout: .seconds(5)))
            else {
                continue
            }
            let processes = status.processes
            guard !processes.isEmpty, processes.allSatisfy({ $0.state == .ready }) else {
                continue  // one is still coming back: wait for it
            }
            let settled = processes.filter { $0.pid > 0 && $0.uptimeMs >= Self.settled }
            guard !settled.isEmpty else {
                continue
            }
            let victim = settled[Int.random(in: 0..<settled.count, using: &random)]
            if kill(victim.pid, SIGKILL) == 0 {
                self.killed.withLock { $0.append(Kill(name: victim.name, pid: victim.pid, at: Date())) }
            }
        }
    }

    /// Waits until every process is READY again (two minutes at most).
    func waitUntilReady() async throws {
        try await self.supervisor.waitUntilAllReady()
    }
}

/// What the run's calls must have left in Baton, checked at the end: every acknowledged event kept, nothing counted
/// twice. (How each call ended is in the report's own rows.)
struct Audit: Sendable {
    /// Events the context-assembler acknowledged (Record answered) that its call does not hold.
    var lostEvents: [String] = []
    var acknowledgedEvents = 0
    /// Timeline events of acknowledged calls that the metrics collector does not hold.
    var lostTimeline: [String] = []
    var expectedTimeline = 0
    /// Handoffs or timeline events Baton holds more than once.
    var doubled: [String] = []

    var lost: Int { self.lostEvents.count + self.lostTimeline.count }

    /// Events that happen once in a handoff's life.
    static let once: [Baton_Metrics_V1_EventKind] = [.gateFired, .humanConnected, .humanGreeted, .callEnded]

    static func check(
        _ outcomes: [CallOutcome],
        handoffs: [String: Baton_Metrics_V1_Handoff],
        assembler: Baton_Context_V1_ContextAssembler.Client
    ) async throws -> Audit {
        var audit = Audit()
        for outcome in outcomes {
            audit.acknowledgedEvents += outcome.acknowledged.count
            if !outcome.acknowledged.isEmpty {
                let call = try await Simulation.retrying {
                    try await assembler.getCall(.with { $0.callID = outcome.callID }, options: Simulation.deadline)
                }
                let held = Set(call.events.map(\.event.eventID))
                audit.lostEvents += outcome.acknowledged.filter { !held.contains($0) }.map { "\(outcome.callID)/\($0)" }
                if call.handoffs.count > (outcome.handoffID.isEmpty ? 0 : 1) {
                    audit.doubled.append("\(outcome.callID): \(call.handoffs.count) handoffs")
                }
            }
            guard !outcome.handoffID.isEmpty else {
                continue
            }
            let expected = Set(outcome.expected)
            audit.expectedTimeline += expected.count
            let timeline = handoffs[outcome.handoffID]?.timeline ?? []
            let kinds = timeline.map(\.kind)
            for kind in expected where !kinds.contains(kind) {
                audit.lostTimeline.append("\(outcome.handoffID)/\(kind)")
            }
            for kind in Self.once where kinds.count(where: { $0 == kind }) > 1 {
                audit.doubled.append("\(outcome.handoffID): \(kind) \(kinds.count { $0 == kind }) times")
            }
            let ids = timeline.map(\.eventID)
            if Set(ids).count != ids.count {
                audit.doubled.append("\(outcome.handoffID): an event id stored twice")
            }
        }
        return audit
    }

    var lines: [(String, String)] {
        var lines = [
            ("events acknowledged", "\(self.acknowledgedEvents)"),
            ("  missing from their call", "\(self.lostEvents.count)"),
            ("timeline events acknowledged", "\(self.expectedTimeline)"),
            ("  missing from the collector", "\(self.lostTimeline.count)"),
            ("counted twice", "\(self.doubled.count)"),
            ("lost", "\(self.lost)"),
        ]
        for example in (self.lostEvents + self.lostTimeline + self.doubled).prefix(5) {
            lines.append(("  for example", example))
        }
        return lines
    }
}
