import BatonRuntime
import BatonTestKit
import Foundation
import Testing

/// `baton-sim` run for real against the four processes: the essay's test, in both modes. One test at a time: each
/// runs five processes flat out, and two at once starve the rest of the suite on two cores.
@Suite("baton-sim", .serialized)
struct SimulatorTests {
    static let scenario = """
        seed: 7
        calls: 50
        concurrency: 10
        confused_ai_share: 0.1
        caller_patience_s: [60, 120]
        turn_gap_s: [0.5, 1]
        failover_queue: desk-a
        agents:
          desk-a: 2
          desk-b: 6
        human:
          render_ms: [50, 150]
          ring_s: [1, 2]
          read_s_per_fact: 0.3
          ask_fact_s: [3, 5]
          decline_share: 0
          handle_s: [60, 120]
        mix:
          - name: billing question
            workflow: billing-support
            share: 20
            facts: [identity.name, account.id]
            verified: knowledge_questions
          - name: payment
            workflow: billing-support
            share: 40
            facts: [identity.name, account.id, card.last4]
            verified: knowledge_questions
            intent: make_payment
            needs: [identity.name, account.id, card.last4]
            insists: true
          - name: large refund
            workflow: billing-support
            share: 20
            facts: [identity.name, account.id, refund_amount]
            amount: [150, 300]
            intent: request_refund
            needs: [account.id, refund_amount]
            insists: true
          - name: cancellation
            workflow: billing-support
            share: 20
            facts: [identity.name, account.id, cancel_reason]
            verified: knowledge_questions
            intent: cancel_contract
            needs: [identity.name, account.id, cancel_reason]
            insists: true

        """

    static var simulator: String { ServiceProcess.productsDirectory + "/baton-sim" }

    static func seconds(_ text: String?) -> Double? {
        text.flatMap { Double($0.replacingOccurrences(of: " s", with: "")) }
    }

    @Test(
        "50 calls in both modes: briefs before hello and no repeats with handoffs, repeats and a slower hello with failover"
    )
    func compare() async throws {
        try await BatonHarness.with { harness in
            let path = harness.directory.appending("scenario.yaml")
            try BatonHarness.write(Self.scenario, to: path)
            let (status, output) = try await ServiceProcess.run(
                path: Self.simulator,
                arguments: [
                    "--scenario", path, "--compare", "--speed", "100", "--json", "--run-dir",
                    harness.directory.appending("var/run"), "--html", harness.directory.appending("report.html"),
                ],
                in: harness.directory,
                within: .seconds(240)
            )
            #expect(status == 0, "\(output)")
            let start = output.firstIndex(of: "{") ?? output.endIndex
            let data = Data(output[start...].utf8)
            let figures = try JSONSerialization.jsonObject(with: data) as? [String: [String: String]] ?? [:]
            let handoff = figures["handoff"] ?? [:]
            let failover = figures["failover"] ?? [:]
            #expect(handoff["calls"] == "50" && failover["calls"] == "50")
            #expect(Int(handoff["reached a human"] ?? "") ?? 0 > 10, "\(handoff)")
            #expect(handoff["brief on screen before hello"] == "100%", "\(handoff)")
            #expect(handoff["repeats per handoff"] == "0.00", "\(handoff)")
            #expect(Double(failover["repeats per handoff"] ?? "") ?? 0 > 0, "\(failover)")
            #expect(failover["brief on screen before hello"] == "0%", "\(failover)")
            let fast = Self.seconds(handoff["time to live human p90"])
            let slow = Self.seconds(failover["time to live human p90"])
            #expect(
                fast != nil && slow != nil && fast! < slow!,
                "p90 \(String(describing: fast)) against \(String(describing: slow))"
            )
            #expect(failover["repeat detection recall"] == "1.00", "Baton found every repeat the callers made")
            for figures in [handoff, failover] {
                #expect(figures["lost"] == "0" && figures["counted twice"] == "0", "\(figures)")
                #expect(Int(figures["events acknowledged"] ?? "") ?? 0 > 200, "\(figures)")
            }
            let html = try TextFile.read(harness.directory.appending("report.html"))
            #expect(html.contains("<svg role=\"img\" aria-label=\"Histogram of time to live human\""))
            #expect(html.contains("4-6 s target") && html.contains("8 s: never over"))
            #expect(html.contains("failover: undesigned"), "the failover reasons are drawn")
            #expect(!html.contains("<script"), "the page runs nothing")
        }
    }

    @Test("--start --chaos: processes killed with SIGKILL during the run, and nothing acknowledged is lost or doubled")
    func chaos() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try BatonHarness.writeConfiguration(in: directory)
        let path = directory.appending("scenario.yaml")
        // Declines and failed transfers too, so that the re-routes the AI follows through WatchCall meet the kills.
        let scenario = Self.scenario.replacingOccurrences(of: "calls: 50", with: "calls: 60")
            .replacingOccurrences(of: "decline_share: 0", with: "decline_share: 0.1")
            .replacingOccurrences(
                of: "failover_queue: desk-a",
                with: "failover_queue: desk-a\nfailed_transfer_share: 0.1"
            )
        try BatonHarness.write(scenario, to: path)
        let (status, output) = try await ServiceProcess.run(
            path: Self.simulator,
            arguments: [
                "--scenario", path, "--start", "--config-dir", directory.appending("config"), "--chaos",
                "--chaos-every", "1.5", "--speed", "6", "--json",
            ],
            in: directory,
            within: .seconds(300)
        )
        #expect(status == 0, "\(output)")
        let start = output.firstIndex(of: "{") ?? output.endIndex
        let figures =
            try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: [String: String]] ?? [:]
        let handoff = figures["handoff"] ?? [:]
        #expect(Int(handoff["chaos: processes killed"] ?? "") ?? 0 >= 2, "\(handoff)")
        #expect(handoff["lost"] == "0", "\(handoff)")
        #expect(handoff["counted twice"] == "0", "\(handoff)")
        #expect(handoff["failed"] == "0", "\(handoff)")
        #expect(Int(handoff["timeline events acknowledged"] ?? "") ?? 0 > 50, "\(handoff)")
        #expect(Int(handoff["transfers failed (SIP 503)"] ?? "") ?? 0 > 0, "\(handoff)")
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [])
        #expect(!before.contains { $0.hasPrefix("baton-sim.") && output.contains("/tmp/\($0)") }, "scratch removed")
    }

    @Test("a scenario with an error is refused with its file, line and column, and nothing runs")
    func invalidScenario() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("broken.yaml")
        try BatonHarness.write(
            Self.scenario.replacingOccurrences(of: "concurrency: 10", with: "concurrency: lots"),
            to: path
        )
        let (status, output) = try await ServiceProcess.run(
            path: Self.simulator,
            arguments: ["--scenario", path, "--run-dir", directory.appending("run")],
            in: directory
        )
        #expect(status == 2)
        #expect(output.contains("\(path):3:14: concurrency must be a number"), "\(output)")
        try BatonHarness.write(
            Self.scenario.replacingOccurrences(of: "seed: 7\n", with: "seed: 7\narrivals:\n  - {minutes: 5}\n"),
            to: path
        )
        let arrivals = try await ServiceProcess.run(
            path: Self.simulator,
            arguments: ["--scenario", path, "--run-dir", directory.appending("run")],
            in: directory
        )
        #expect(arrivals.status == 2)
        #expect(
            arrivals.output.contains("\(path):3:5: arrivals[0] needs minutes and per_minute"),
            "\(arrivals.output)"
        )
    }
}
