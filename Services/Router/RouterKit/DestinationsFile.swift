package import BatonRuntime
import Foundation
import Yams

/// The router's configuration: the policy and the destinations.
package struct RoutingConfiguration: Equatable, Sendable {
    var policy: Policy
    package var destinations: [Destination]
}

/// Reads `destinations.yaml` and validates it, collecting every problem with its line and column and what was
/// expected.
package struct DestinationsFile {
    private var yaml: YAMLReader

    private init(file: String) {
        self.yaml = YAMLReader(file: file)
    }

    /// The configuration in `text`; throws ``InvalidConfigFile`` listing every problem found.
    package static func parse(_ text: String, file: String) throws(InvalidConfigFile) -> RoutingConfiguration {
        var reader = DestinationsFile(file: file)
        let configuration = reader.read(text)
        guard reader.yaml.problems.isEmpty, let configuration else {
            throw InvalidConfigFile(problems: reader.yaml.problems)
        }
        return configuration
    }

    private static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    private mutating func read(_ text: String) -> RoutingConfiguration? {
        guard let root = self.yaml.root(of: text, expecting: "policy and destinations"),
            let top = self.yaml.mapping(root, "the file")
        else {
            return nil
        }
        let fields = self.yaml.fields(of: top, known: ["policy", "destinations"], in: "the file")
        let policy = fields["policy"].map { self.policy($0) } ?? Policy()
        var destinations: [Destination] = []
        var firstLine: [String: Int] = [:]
        if let node = fields["destinations"], let list = self.yaml.sequence(node, "destinations") {
            for item in list {
                guard let destination = self.destination(item) else {
                    continue
                }
                if let first = firstLine[destination.id] {
                    self.yaml.report(
                        at: item,
                        "duplicate destination id '\(destination.id)' (first on line \(first)); ids are unique"
                    )
                } else {
                    firstLine[destination.id] = item.mark?.line ?? 0
                    destinations.append(destination)
                }
            }
        } else if fields["destinations"] == nil {
            self.yaml.report(at: root, "missing 'destinations'; expected a list of destinations")
        }
        return RoutingConfiguration(policy: policy, destinations: destinations)
    }

    private mutating func policy(_ node: Node) -> Policy {
        var policy = Policy()
        guard let mapping = self.yaml.mapping(node, "policy") else {
            return policy
        }
        let known = [
            "target_live_human_s", "max_live_human_s", "prefer", "ring_and_greet_s", "learn_ring_and_greet",
            "reservation_timeout_s", "availability_max_age_s", "categories",
        ]
        let fields = self.yaml.fields(of: mapping, known: known, in: "policy")
        if let value = self.yaml.number(fields["target_live_human_s"], "target_live_human_s", atLeast: 0) {
            policy.targetLiveHumanSeconds = value
        }
        if let value = self.yaml.number(fields["max_live_human_s"], "max_live_human_s", atLeast: 0) {
            policy.maxLiveHumanSeconds = value
        }
        if policy.targetLiveHumanSeconds > policy.maxLiveHumanSeconds {
            self.yaml.report(
                at: fields["target_live_human_s"] ?? fields["max_live_human_s"] ?? node,
                "target_live_human_s (\(policy.targetLiveHumanSeconds)) is over max_live_human_s "
                    + "(\(policy.maxLiveHumanSeconds)); expected the target within the maximum"
            )
        }
        if fields["prefer"] != nil {
            policy.prefer = self.preference(fields["prefer"], in: node)
        }
        if let value = self.yaml.number(fields["ring_and_greet_s"], "ring_and_greet_s", atLeast: 0) {
            policy.ringAndGreetSeconds = value
        }
        if let value = self.yaml.flag(fields["learn_ring_and_greet"], "learn_ring_and_greet") {
            policy.learnRingAndGreet = value
        }
        if let value = self.yaml.number(fields["reservation_timeout_s"], "reservation_timeout_s", atLeast: 1) {
            policy.reservationTimeoutSeconds = value
        }
        if let value = self.yaml.number(fields["availability_max_age_s"], "availability_max_age_s", atLeast: 1) {
            policy.availabilityMaxAgeSeconds = value
        }
        if let categoriesNode = fields["categories"], let categories = self.yaml.mapping(categoriesNode, "categories") {
            for (key, value) in categories {
                guard let name = self.yaml.string(key, "a category name", in: categoriesNode),
                    let ruleMapping = self.yaml.mapping(value, "category '\(name)'")
                else {
                    continue
                }
                let ruleFields = self.yaml.fields(
                    of: ruleMapping,
                    known: ["requires", "prefer", "requires_live_context"],
                    in: "category '\(name)'"
                )
                var rule = CategoryRule()
                rule.requires = Set(self.yaml.strings(ruleFields["requires"], "requires") ?? [])
                if ruleFields["prefer"] != nil {
                    rule.prefer = self.preference(ruleFields["prefer"], in: value)
                }
                rule.requiresLiveContext =
                    self.yaml.flag(ruleFields["requires_live_context"], "requires_live_context") ?? false
                policy.categories[name] = rule
            }
        }
        return policy
    }

    private mutating func preference(_ node: Node?, in parent: Node) -> Destination.Kind? {
        let choices = Destination.Kind.allCases.map(\.rawValue) + ["none"]
        guard let text = self.yaml.choice(node, "prefer", of: choices, in: parent) else {
            return nil
        }
        return Destination.Kind(rawValue: text)
    }

    private mutating func destination(_ node: Node) -> Destination? {
        guard let mapping = self.yaml.mapping(node, "a destination") else {
            return nil
        }
        let known = [
            "id", "kind", "skills", "certifications", "hours", "transfer", "agents", "average_handle_s",
            "cost_per_min", "context",
        ]
        let fields = self.yaml.fields(of: mapping, known: known, in: "a destination")
        let problemsBefore = self.yaml.problems.count
        let id = self.yaml.string(fields["id"], "id", required: true, in: node)
        let kinds = Destination.Kind.allCases.map(\.rawValue)
        let kind = self.yaml.choice(fields["kind"], "kind", of: kinds, in: node).flatMap(Destination.Kind.init)
        if fields["kind"] == nil {
            self.yaml.report(at: node, "missing 'kind'; expected \(kinds.joined(separator: " or "))")
        }
        let skills = self.yaml.strings(fields["skills"], "skills") ?? []
        if fields["skills"] == nil {
            self.yaml.report(at: node, "missing 'skills'; expected the list of skills its agents have")
        }
        let certifications = self.yaml.strings(fields["certifications"], "certifications") ?? []
        let hours = fields["hours"].map { self.hours($0) } ?? Hours.always()
        let transfer = self.yaml.string(fields["transfer"], "transfer", required: true, in: node)
        var agents = 0
        if let number = self.yaml.number(fields["agents"], "agents", atLeast: 0) {
            if number == number.rounded() {
                agents = Int(number)
            } else {
                self.yaml.report(at: fields["agents"], "agents must be a whole number, not \(number)")
            }
        } else if fields["agents"] == nil {
            self.yaml.report(at: node, "missing 'agents'; expected how many agents the destination staffs")
        }
        let handle = self.yaml.number(fields["average_handle_s"], "average_handle_s", atLeast: 1)
        if fields["average_handle_s"] == nil {
            self.yaml.report(at: node, "missing 'average_handle_s'; expected the average handle time in seconds")
        }
        let cost = self.yaml.number(fields["cost_per_min"], "cost_per_min", atLeast: 0) ?? 0
        let contexts = Destination.Context.allCases.map(\.rawValue)
        let context =
            fields["context"] == nil
            ? Destination.Context.none
            : self.yaml.choice(fields["context"], "context", of: contexts, in: node).flatMap(Destination.Context.init)
        guard self.yaml.problems.count == problemsBefore, let id, let kind, let transfer, let handle, let context
        else {
            return nil
        }
        return Destination(
            id: id,
            kind: kind,
            skills: Set(skills),
            certifications: Set(certifications),
            hours: hours,
            transfer: transfer,
            agents: agents,
            averageHandleSeconds: handle,
            costPerMinute: cost,
            context: context
        )
    }

    private mutating func hours(_ node: Node) -> Hours {
        let utc = TimeZone(identifier: "UTC")!
        guard let mapping = self.yaml.mapping(node, "hours") else {
            return Hours.always()
        }
        let fields = self.yaml.fields(of: mapping, known: ["time_zone", "open", "closed"], in: "hours")
        var hours = Hours(timeZone: utc)
        if let name = self.yaml.string(fields["time_zone"], "time_zone", required: true, in: node) {
            if let zone = TimeZone(identifier: name) {
                hours.timeZone = zone
            } else {
                self.yaml.report(
                    at: fields["time_zone"],
                    "unknown time zone '\(name)'; expected an IANA name such as Europe/Dublin or America/New_York"
                )
            }
        }
        if let openNode = fields["open"], let list = self.yaml.sequence(openNode, "open") {
            for item in list {
                if let range = self.range(item) {
                    hours.ranges.append(range)
                }
            }
            if list.isEmpty {
                self.yaml.report(at: openNode, "open needs at least one range; leave out hours to be always open")
            }
        } else if fields["open"] == nil {
            self.yaml.report(at: node, "missing 'open'; expected a list of {days, from, to} ranges")
        }
        for item in self.yaml.strings(fields["closed"], "closed") ?? [] {
            if let day = Self.day(item) {
                hours.closedDates.insert(day)
            } else {
                self.yaml.report(at: fields["closed"], "closed date '\(item)' is not a date; expected YYYY-MM-DD")
            }
        }
        return hours
    }

    private mutating func range(_ node: Node) -> Hours.Range? {
        guard let mapping = self.yaml.mapping(node, "an opening range") else {
            return nil
        }
        let fields = self.yaml.fields(of: mapping, known: ["days", "from", "to"], in: "an opening range")
        var days: Set<Int> = []
        if let names = self.yaml.strings(fields["days"], "days") {
            for (index, name) in names.enumerated() {
                if let day = Self.weekdays.firstIndex(of: name.lowercased()) {
                    days.insert(day + 1)
                } else {
                    let item = fields["days"]?.sequence.map { Array($0)[index] }
                    self.yaml.report(
                        at: item ?? fields["days"],
                        "unknown day '\(name)'; expected \(Self.weekdays.joined(separator: ", "))"
                    )
                }
            }
        } else if fields["days"] == nil {
            self.yaml.report(at: node, "missing 'days'; expected a list such as [mon, tue, wed, thu, fri]")
        }
        let opens = self.time(fields["from"], "from", in: node)
        let closes = self.time(fields["to"], "to", in: node)
        guard let opens, let closes, !days.isEmpty else {
            return nil
        }
        return Hours.Range(days: days, opens: opens, closes: closes)
    }

    /// "HH:MM" (00:00 to 24:00) as minutes after midnight.
    private mutating func time(_ node: Node?, _ what: String, in parent: Node) -> Int? {
        guard let text = self.yaml.string(node, what, required: true, in: parent) else {
            return nil
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]),
            let minute = Int(parts[1]), (0...23).contains(hour) && (0...59).contains(minute) || text == "24:00"
        {
            return hour * 60 + minute
        }
        self.yaml.report(at: node, "\(what) '\(text)' is not a time of day; expected HH:MM, 00:00 to 24:00")
        return nil
    }

    static func day(_ text: String) -> Hours.Day? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), (1...31).contains(day)
        else {
            return nil
        }
        return Hours.Day(year: year, month: month, day: day)
    }
}
