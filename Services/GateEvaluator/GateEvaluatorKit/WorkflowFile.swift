package import BatonRuntime
import Yams

/// Reads a workflow from YAML and validates it, collecting every error a workflow author can act on, each with
/// its file, line and column and what was expected.
package struct WorkflowFile {
    private var yaml: YAMLReader

    private init(file: String) {
        self.yaml = YAMLReader(file: file)
    }

    /// The workflow in `text`; throws ``InvalidConfigFile`` listing every problem found.
    package static func parse(_ text: String, file: String) throws(InvalidConfigFile) -> Workflow {
        var reader = WorkflowFile(file: file)
        let workflow = reader.read(text)
        guard reader.yaml.problems.isEmpty, let workflow else {
            throw InvalidConfigFile(problems: reader.yaml.problems)
        }
        return workflow
    }

    // MARK: - Workflow

    private mutating func read(_ text: String) -> Workflow? {
        guard let root = self.yaml.root(of: text, expecting: "a workflow with id, version, persona, steps and gates"),
            let top = self.yaml.mapping(root, "the workflow")
        else {
            return nil
        }
        let known = ["id", "version", "persona", "steps", "slots", "gates", "default_skills"]
        let fields = self.yaml.fields(of: top, known: known, in: "a workflow")
        let id = self.yaml.string(fields["id"], "id", required: true, in: root) ?? ""
        let version = self.yaml.scalarText(fields["version"], "version", in: root) ?? ""
        let persona = self.yaml.string(fields["persona"], "persona", required: true, in: root) ?? ""
        let steps = self.yaml.strings(fields["steps"], "steps") ?? []
        let slots = self.yaml.strings(fields["slots"], "slots") ?? []
        let defaultSkills = self.yaml.strings(fields["default_skills"], "default_skills") ?? []
        var gates: [Gate] = []
        var firstLine: [String: Int] = [:]
        if let gatesNode = fields["gates"] {
            if let list = self.yaml.sequence(gatesNode, "gates") {
                for node in list {
                    guard let gate = self.gate(node, steps: Set(steps), slots: Set(slots)) else {
                        continue
                    }
                    let line = node.mark?.line ?? 0
                    if let first = firstLine[gate.id] {
                        self.yaml.report(
                            at: node,
                            "duplicate gate id '\(gate.id)' (first on line \(first)); gate ids are unique"
                        )
                    } else {
                        firstLine[gate.id] = line
                        gates.append(gate)
                    }
                }
            }
        } else {
            self.yaml.report(at: root, "missing 'gates'; expected a list of gates")
        }
        return Workflow(
            id: id,
            version: version,
            persona: persona,
            steps: steps,
            slots: slots,
            gates: gates,
            defaultSkills: defaultSkills
        )
    }

    // MARK: - Gates

    private mutating func gate(_ node: Node, steps: Set<String>, slots: Set<String>) -> Gate? {
        guard let mapping = self.yaml.mapping(node, "a gate") else {
            return nil
        }
        let known = ["id", "category", "when", "skills", "priority", "brief_lead", "once"]
        let fields = self.yaml.fields(of: mapping, known: known, in: "a gate")
        guard let id = self.yaml.string(fields["id"], "id", required: true, in: node) else {
            return nil
        }
        let category = self.yaml.string(fields["category"], "category", required: true, in: node) ?? ""
        if !category.isEmpty, !category.allSatisfy({ $0.isLetter || $0 == "_" }) {
            self.yaml.report(
                at: fields["category"],
                "category '\(category)' is not a word; expected payment, grief, judgement, legal, ethical, "
                    + "caller_request or a custom word of letters and '_'"
            )
        }
        var priority = Priority.normal
        if let priorityNode = fields["priority"] {
            let names = Priority.allCases.map(\.name)
            if let text = self.yaml.string(priorityNode, "priority", in: node),
                let found = Priority.allCases.first(where: { $0.name == text })
            {
                priority = found
            } else {
                self.yaml.report(at: priorityNode, "priority must be one of \(names.joined(separator: ", "))")
            }
        }
        let briefLead = self.yaml.strings(fields["brief_lead"], "brief_lead") ?? []
        if let leadNodes = fields["brief_lead"]?.sequence {
            for item in leadNodes where !slots.contains(item.string ?? "") {
                self.yaml.report(
                    at: item,
                    "brief_lead '\(item.string ?? "")' is not one of the workflow's slots "
                        + "[\(slots.sorted().joined(separator: ", "))]"
                )
            }
        }
        var once = true
        if let onceNode = fields["once"] {
            if let flag = onceNode.bool {
                once = flag
            } else {
                self.yaml.report(at: onceNode, "once must be true or false")
            }
        }
        guard let whenNode = fields["when"] else {
            self.yaml.report(at: node, "gate '\(id)' has no 'when'; expected the condition that makes it fire")
            return nil
        }
        guard let when = self.condition(whenNode, steps: steps) else {
            return nil
        }
        return Gate(
            id: id,
            category: category,
            when: when,
            skills: self.yaml.strings(fields["skills"], "skills") ?? [],
            priority: priority,
            briefLead: briefLead,
            once: once
        )
    }

    // MARK: - Conditions

    private static let operators = ["intent", "slot", "said", "step", "all", "any", "not"]
    private static let slotTests = ["exists", "equals", "gt", "gte", "lt", "lte", "in"]

    private mutating func condition(_ node: Node, steps: Set<String>) -> Condition? {
        guard let mapping = self.yaml.mapping(node, "a condition") else {
            return nil
        }
        guard let (key, value) = mapping.first else {
            self.yaml.report(at: node, "empty condition; expected one of \(Self.operators.joined(separator: ", "))")
            return nil
        }
        guard mapping.count == 1 else {
            let names = mapping.map { $0.key.string ?? "?" }.joined(separator: " and ")
            self.yaml.report(at: node, "a condition has one operator, found \(names); wrap several in all: or any:")
            return nil
        }
        switch key.string ?? "" {
        case "intent":
            return self.yaml.nonEmptyStrings(value, "intent").map(Condition.intent)
        case "said":
            return self.yaml.nonEmptyStrings(value, "said").map { .said($0.map { Phrase($0) }) }
        case "step":
            guard let step = self.yaml.string(value, "step", in: node) else {
                return nil
            }
            guard steps.contains(step) else {
                self.yaml.report(
                    at: value,
                    "step '\(step)' is not one of the workflow's steps [\(steps.sorted().joined(separator: ", "))]"
                )
                return nil
            }
            return .step(step)
        case "all", "any":
            guard let list = self.yaml.sequence(value, key.string ?? ""), !list.isEmpty else {
                if value.sequence?.isEmpty == true {
                    self.yaml.report(at: value, "empty condition list; expected at least one condition")
                }
                return nil
            }
            let conditions = list.compactMap { self.condition($0, steps: steps) }
            guard conditions.count == list.count else {
                return nil
            }
            return key.string == "all" ? .all(conditions) : .any(conditions)
        case "not":
            return self.condition(value, steps: steps).map(Condition.not)
        case "slot":
            return self.slotCondition(value)
        default:
            self.yaml.report(
                at: key,
                "unknown operator '\(key.string ?? "")'; expected one of \(Self.operators.joined(separator: ", "))"
            )
            return nil
        }
    }

    private mutating func slotCondition(_ node: Node) -> Condition? {
        guard let mapping = self.yaml.mapping(node, "slot") else {
            return nil
        }
        var name: String?
        var test: SlotTest?
        for (key, value) in mapping {
            let word = key.string ?? ""
            if word == "name" {
                name = self.yaml.string(value, "slot name", in: node)
                continue
            }
            guard Self.slotTests.contains(word) else {
                self.yaml.report(
                    at: key,
                    "unknown slot test '\(word)'; expected name and one of \(Self.slotTests.joined(separator: ", "))"
                )
                return nil
            }
            guard test == nil else {
                self.yaml.report(at: key, "a slot condition has one test; wrap several in all:")
                return nil
            }
            switch word {
            case "exists":
                guard let flag = value.bool else {
                    self.yaml.report(at: value, "exists must be true or false")
                    return nil
                }
                test = .exists(flag)
            case "equals":
                guard let scalar = self.slotValue(value, "equals") else {
                    return nil
                }
                test = .equals(scalar)
            case "in":
                guard let list = self.yaml.sequence(value, "in"), !list.isEmpty else {
                    if value.sequence?.isEmpty == true {
                        self.yaml.report(at: value, "in needs at least one value")
                    }
                    return nil
                }
                let values = list.compactMap { self.slotValue($0, "in") }
                guard values.count == list.count else {
                    return nil
                }
                test = .isIn(values)
            default:
                guard value.scalar != nil, let limit = value.float, value.bool == nil else {
                    self.yaml.report(
                        at: value,
                        "\(word) compares numbers, but \(YAMLReader.show(value)) is not a number"
                    )
                    return nil
                }
                test =
                    [
                        "gt": SlotTest.greaterThan(limit), "gte": .atLeast(limit), "lt": .lessThan(limit),
                        "lte": .atMost(limit),
                    ][word]
            }
        }
        guard let name, !name.isEmpty else {
            self.yaml.report(at: node, "slot condition has no name; expected name: and one test")
            return nil
        }
        guard let test else {
            self.yaml.report(
                at: node,
                "slot condition on '\(name)' has no test; expected one of \(Self.slotTests.dropFirst(0).joined(separator: ", "))"
            )
            return nil
        }
        return .slot(name, test)
    }

    // MARK: - Values

    private mutating func slotValue(_ node: Node, _ what: String) -> SlotValue? {
        guard node.scalar != nil else {
            self.yaml.report(at: node, "\(what) takes a single value (text, number, true or false)")
            return nil
        }
        if let flag = node.bool {
            return .flag(flag)
        }
        if node.int != nil || node.float != nil, let number = node.float {
            return .number(number)
        }
        return .text(node.string ?? "")
    }
}
