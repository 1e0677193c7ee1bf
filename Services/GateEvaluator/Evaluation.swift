/// What a call has established so far, as the gate evaluator sees it.
struct CallContext: Sendable {
    var slots: [String: SlotValue] = [:]
    var intents: Set<String> = []
    var stepsReached: Set<String> = []
    /// The caller's recent turns, for `said`.
    var callerTurns: [String] = []
    /// Gates that have already fired on this call (a `once` gate does not fire again).
    var firedGates: Set<String> = []
    /// The AI said it cannot go on: if no gate matches, the call still reaches a human, as an undesigned handoff.
    var aiEscalation = false
    /// The step the call is at, reported with an undesigned handoff.
    var currentStep = ""
}

/// The evaluator's answer for one event.
enum Decision: Equatable, Sendable {
    case `continue`
    /// A designed gate fired: `gate` won; `others` also matched (highest priority first, then file order).
    case handoff(gate: Gate, because: String, others: [String])
    /// The AI escalated outside every gate: it still reaches a human, and counts as a failover.
    case undesigned(skills: [String], step: String)
}

extension Workflow {
    /// Decides, deterministically, whether the call has reached a gate: every gate whose condition holds (and
    /// that may still fire) matches; the highest priority wins; ties go to the gate earlier in the file.
    func evaluate(_ context: CallContext) -> Decision {
        // Indices, not copies of the gates: copying a gate retains every string and array in it.
        var matched: [Int] = []
        let turns = context.callerTurns.map(Words.init)  // once per evaluation, not once per phrase and gate
        for index in self.gates.indices {
            if self.gates[index].once && !context.firedGates.isEmpty
                && context.firedGates.contains(self.gates[index].id)
            {
                continue
            }
            if self.gates[index].when.holds(in: context, turns: turns, explain: false) != nil {
                matched.append(index)
            }
        }
        matched.sort {
            let (left, right) = (self.gates[$0].priority, self.gates[$1].priority)
            return left != right ? left > right : $0 < $1
        }
        if let winner = matched.first {
            // Only the winner's reason is put into words.
            let gate = self.gates[winner]
            let because = gate.when.holds(in: context, turns: turns, explain: true) ?? ""
            return .handoff(gate: gate, because: because, others: matched.dropFirst().map { self.gates[$0].id })
        }
        if context.aiEscalation {
            return .undesigned(skills: self.defaultSkills, step: context.currentStep)
        }
        return .continue
    }
}

extension Condition {
    /// Why the condition holds, in words ("intent make_payment is in [make_payment, update_card]"), or nil when it
    /// does not.
    func holds(in context: CallContext) -> String? {
        self.holds(in: context, turns: context.callerTurns.map(Words.init), explain: true)
    }

    /// ``holds(in:)`` with the caller's turns already split into words. Without `explain` a holding condition
    /// answers "": deciding needs no words, and words cost allocations.
    func holds(in context: CallContext, turns: [Words], explain: Bool) -> String? {
        switch self {
        case .intent(let names):
            guard let found = names.first(where: { context.intents.contains($0) }) else {
                return nil
            }
            return explain ? "intent \(found) is in [\(names.joined(separator: ", "))]" : ""
        case .slot(let name, let test):
            guard let reason = test.holds(for: context.slots[name], explain: explain) else {
                return nil
            }
            return explain ? "slot \(name) \(reason)" : ""
        case .said(let phrases):
            for phrase in phrases {
                if let turn = turns.firstIndex(where: { $0.contains(phrase.words) }) {
                    return explain ? "the caller said \"\(phrase)\" (\"\(context.callerTurns[turn])\")" : ""
                }
            }
            return nil
        case .step(let step):
            guard context.stepsReached.contains(step) else {
                return nil
            }
            return explain ? "step \(step) was reached" : ""
        case .all(let conditions):
            var reasons: [String] = []
            for condition in conditions {
                guard let reason = condition.holds(in: context, turns: turns, explain: explain) else {
                    return nil
                }
                if explain {
                    reasons.append(reason)
                }
            }
            return reasons.joined(separator: " and ")
        case .any(let conditions):
            return conditions.lazy.compactMap { $0.holds(in: context, turns: turns, explain: explain) }.first
        case .not(let condition):
            guard condition.holds(in: context, turns: turns, explain: false) == nil else {
                return nil
            }
            return explain ? "not (\(condition.summary))" : ""
        }
    }

    /// The condition in words, for `not` and for people reading a workflow.
    var summary: String {
        switch self {
        case .intent(let names): "intent in [\(names.joined(separator: ", "))]"
        case .slot(let name, let test): "slot \(name) \(test.summary)"
        case .said(let phrases): "the caller said one of [\(phrases.map(\.text).joined(separator: ", "))]"
        case .step(let step): "step \(step) reached"
        case .all(let conditions): conditions.map(\.summary).joined(separator: " and ")
        case .any(let conditions): conditions.map(\.summary).joined(separator: " or ")
        case .not(let condition): "not (\(condition.summary))"
        }
    }

}

/// A text split into lowercase words, on its UTF-8 bytes: letters, digits and `'` make words (every non-ASCII byte
/// counts as a letter, so accented words stay whole); ASCII letters are folded to lowercase.
struct Words: Sendable {
    private let bytes: [UInt8]
    private let words: [Range<Int>]

    init(_ text: String) {
        var bytes = Array(text.utf8)
        var words: [Range<Int>] = []
        var start: Int?
        for index in bytes.indices {
            let byte = bytes[index]
            if byte >= 0x41 && byte <= 0x5A {
                bytes[index] = byte + 0x20
            }
            let inWord =
                byte >= 0x80 || (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
                || byte == 0x27
            if inWord, start == nil {
                start = index
            } else if !inWord, let first = start {
                words.append(first..<index)
                start = nil
            }
        }
        if let first = start {
            words.append(first..<bytes.count)
        }
        self.bytes = bytes
        self.words = words
    }

    /// Whether `phrase`'s words occur here, consecutively.
    func contains(_ phrase: Words) -> Bool {
        let count = phrase.words.count
        guard count > 0, self.words.count >= count else {
            return false
        }
        return (0...(self.words.count - count)).contains { start in
            (0..<count).allSatisfy { offset in
                self.bytes[self.words[start + offset]].elementsEqual(phrase.bytes[phrase.words[offset]])
            }
        }
    }
}

extension SlotTest {
    /// Why the test passes for `value`, in words, or nil when it does not.
    func holds(for value: SlotValue?, explain: Bool = true) -> String? {
        switch self {
        case .exists(let wanted):
            return (value != nil) == wanted ? (wanted ? "is present" : "is absent") : nil
        case .equals(let expected):
            guard let value, value.matches(expected) else {
                return nil
            }
            return explain ? "is \(value)" : ""
        case .isIn(let options):
            guard let value, options.contains(where: value.matches) else {
                return nil
            }
            return explain ? "is \(value), in [\(options.map(\.description).joined(separator: ", "))]" : ""
        case .greaterThan(let limit), .atLeast(let limit), .lessThan(let limit), .atMost(let limit):
            guard let number = value?.number, self.compare(number, limit) else {
                return nil
            }
            return explain ? "is \(SlotValue.number(number)), \(self.summary)" : ""
        }
    }

    private func compare(_ number: Double, _ limit: Double) -> Bool {
        switch self {
        case .greaterThan: number > limit
        case .atLeast: number >= limit
        case .lessThan: number < limit
        case .atMost: number <= limit
        default: false
        }
    }

    var summary: String {
        switch self {
        case .exists(let wanted): wanted ? "is present" : "is absent"
        case .equals(let value): "equals \(value)"
        case .greaterThan(let limit): "> \(SlotValue.number(limit))"
        case .atLeast(let limit): ">= \(SlotValue.number(limit))"
        case .lessThan(let limit): "< \(SlotValue.number(limit))"
        case .atMost(let limit): "<= \(SlotValue.number(limit))"
        case .isIn(let values): "in [\(values.map(\.description).joined(separator: ", "))]"
        }
    }
}
