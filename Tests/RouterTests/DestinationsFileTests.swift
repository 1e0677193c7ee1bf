import BatonRuntime
import BatonTestKit
import Foundation
import Testing

@testable import RouterKit

@Suite("destinations.yaml")
struct DestinationsFileTests {
    static let valid = """
        policy:
          target_live_human_s: 5
          categories:
            payment: {requires: [pci]}
        destinations:
          - id: in-house
            kind: in_house
            skills: [billing]
            certifications: [pci]
            hours:
              time_zone: Europe/Dublin
              open:
                - {days: [mon, fri], from: "08:00", to: "20:00"}
              closed: [2026-12-25]
            transfer: sip:a@example
            agents: 3
            average_handle_s: 300
            context: live
        """

    @Test("the example configuration loads, consistent with the example workflows")
    func example() throws {
        let path = ServiceProcess.repositoryDirectory + "/config/destinations.yaml"
        let configuration = try DestinationsFile.parse(try TextFile.read(path), file: path)
        #expect(configuration.destinations.map(\.id) == ["billing-in-house", "care-in-house", "northwind-bpo"])
        #expect(configuration.policy.categories["payment"]?.requires == ["pci"])
        #expect(configuration.destinations.contains { $0.kind == .partner && $0.certifications.contains("pci") })
    }

    @Test("a valid file reads every field")
    func validFile() throws {
        let configuration = try DestinationsFile.parse(Self.valid, file: "d.yaml")
        let destination = try #require(configuration.destinations.first)
        #expect(destination.kind == .inHouse)
        #expect(destination.hours.timeZone.identifier == "Europe/Dublin")
        #expect(destination.hours.ranges == [Hours.Range(days: [1, 5], opens: 480, closes: 1200)])
        #expect(destination.hours.closedDates == [Hours.Day(year: 2026, month: 12, day: 25)])
        #expect(configuration.policy.maxLiveHumanSeconds == 8)  // the default
    }

    /// Each broken line, and the problem reported at its line and column.
    @Test(
        "every validation error names its line and column",
        arguments: [
            ("    kind: in_house", "    kind: vendor", 7, 11, "kind 'vendor' is not one of in_house, partner"),
            ("    agents: 3", "    agents: -2", 16, 13, "agents must be at least 0"),
            ("    agents: 3", "    agents: many", 16, 13, "agents must be a number"),
            ("    context: live", "    context: maybe", 18, 14, "context 'maybe' is not one of live, none"),
            ("      time_zone: Europe/Dublin", "      time_zone: Mars/Olympus", 11, 18, "unknown time zone"),
            ("from: \"08:00\"", "from: \"25:00\"", 13, 36, "from '25:00' is not a time of day"),
            ("days: [mon, fri]", "days: [mon, fry]", 13, 24, "unknown day 'fry'"),
            ("closed: [2026-12-25]", "closed: [Christmas]", 14, 15, "closed date 'Christmas' is not a date"),
            ("    transfer: sip:a@example", "    transfr: sip:a@example", 15, 5, "unknown key 'transfr'"),
            ("  target_live_human_s: 5", "  target_live_human_s: 9", 2, 24, "target_live_human_s (9.0) is over"),
            ("payment: {requires: [pci]}", "payment: {require: [pci]}", 4, 15, "unknown key 'require'"),
        ]
    )
    func problems(_ original: String, _ broken: String, _ line: Int, _ column: Int, _ message: String) throws {
        let text = Self.valid.replacingFirst(original, with: broken)
        #expect(text != Self.valid)
        let error = try #require(throws: InvalidConfigFile.self) { try DestinationsFile.parse(text, file: "d.yaml") }
        let problem = try #require(error.problems.first { $0.message.contains(message) }, "\(error)")
        #expect(problem.file == "d.yaml")
        #expect(problem.line == line, "\(problem)")
        #expect(problem.column == column, "\(problem)")
    }

    @Test("a duplicate destination id is refused, naming the first")
    func duplicate() throws {
        let list = Self.valid.components(separatedBy: "destinations:\n")[1]
        let error = try #require(throws: InvalidConfigFile.self) {
            try DestinationsFile.parse(Self.valid + "\n" + list, file: "d.yaml")
        }
        #expect(
            error.problems.map(\.message) == ["duplicate destination id 'in-house' (first on line 6); ids are unique"]
        )
        #expect(error.problems.first?.line == 19)
    }
}
