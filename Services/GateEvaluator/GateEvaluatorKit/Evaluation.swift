/// What a call has established so far, as the gate evaluator sees it.
package struct CallContext: Sendable {
    package var slots: [String: SlotValue] = [:]
    package var intents: Set<String> = []
    package var stepsReached: Set<String> = []
    /// The caller's recent turns, for `said`.
    package var callerTurns: [String] = []
    /// Gates that have already fired on this call (a `once` gate does not fire again).
    var firedGates: Set<String> = []
    /// The AI said it cannot go on: if no gate matches, the call still reaches a human, as an undesigned handoff.
    var aiEscalation = false
    /// The step the call is at, reported with an undesigned handoff.
    var currentStep = ""

    /// A call that has established nothing yet.
    package init() {}
}

/// The evaluator's answer for one event.
package enum Decision: Equatable, Sendable {
    case `continue`
    /// A designed gate fired: `gate` won; `others` also matched (highest priority first, then file order).
    case handoff(gate: Gate, because: String, others: [String])
    /// The AI escalated outside every gate: it still reaches a human, and counts as a failover.
    case undesigned(skills: [String], step: String)
}

extension Workflow {
    /// Decides, deterministically, whether the call has reached a gate: every gate whose condition holds (and
    /// that may still fire) matches; the highest priority wins; ties go to the gate earlier in the file.
    package func evaluate(_ context: CallContext) -> Decision {
        // Indices, not copies of the gates: copying a gate retains every string and array in it. The sort compares
        // (priority, index) pairs so that its closure does not capture, and so copy, the workflow.
        var matched: [(priority: Priority, index: Int)] = []
        let turns = Speech(context.callerTurns)  // once per evaluation, not once per phrase and gate
        for index in self.gates.indices {
            if self.gates[index].once && !context.firedGates.isEmpty
                && context.firedGates.contains(self.gates[index].id)
            {
                continue
            }
            if self.gates[index].when.holds(in: context, turns: turns, explain: false) != nil {
                matched.append((self.gates[index].priority, index))
            }
        }
        matched.sort { $0.priority != $1.priority ? $0.priority > $1.priority : $0.index < $1.index }
        if let winner = matched.first {
            // Only the winner's reason is put into words.
            let gate = self.gates[winner.index]
            let because = gate.when.holds(in: context, turns: turns, explain: true) ?? ""
            return .handoff(gate: gate, because: because, others: matched.dropFirst().map { self.gates[$0.index].id })
        }
        if context.aiEscalation {
            return .undesigned(skills: self.defaultSkills, step: context.currentStep)
        }
        return .continue
    }
}

extension Condition {
    /// Why the condition holds, in words ("intent make_payment is in [make_payment, update_card]"), or nil when it
    /// does not; `turns` are the caller's turns reduced to their words. Without `explain` a holding condition
    /// answers "": deciding needs no words, and words cost allocations.
    func holds(in context: CallContext, turns: Speech, explain: Bool) -> String? {
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
                if let turn = turns.firstText(containing: phrase.pattern) {
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
            // A loop rather than `lazy.compactMap`, whose closure would copy the context.
            for condition in conditions {
                if let reason = condition.holds(in: context, turns: turns, explain: explain) {
                    return reason
                }
            }
            return nil
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

/// Texts reduced to their words for whole-word matching, in one byte buffer: ASCII letters folded to lowercase,
/// every run of other characters (spaces, punctuation) made one space, each text opened and closed by a space and
/// ended by a newline. Letters, digits and `'` make words, and every non-ASCII byte counts as a letter, so accented
/// words stay whole. A phrase, reduced the same way but without its newline (" charged twice "), then occurs in a
/// text exactly when its words occur there consecutively, and never across two texts.
struct Speech: Sendable {
    /// The reduced bytes; a phrase's pattern.
    let bytes: [UInt8]

    init(_ texts: [String]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(texts.reduce(0) { $0 + $1.utf8.count + 3 })
        for text in texts {
            Self.reduce(text, into: &bytes)
            bytes.append(0x0A)
        }
        self.bytes = bytes
    }

    /// A phrase's pattern: its words, each preceded and followed by a space.
    init(phrase: String) {
        var bytes: [UInt8] = []
        Self.reduce(phrase, into: &bytes)
        self.bytes = bytes.count > 1 ? bytes : []  // a phrase of no words matches nothing
    }

    private static func reduce(_ text: String, into bytes: inout [UInt8]) {
        bytes.append(0x20)
        for byte in text.utf8 {
            let folded = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
            if folded >= 0x80 || (folded >= 0x30 && folded <= 0x39) || (folded >= 0x61 && folded <= 0x7A)
                || folded == 0x27
            {
                bytes.append(folded)
            } else if bytes.last != 0x20 {
                bytes.append(0x20)
            }
        }
        if bytes.last != 0x20 {
            bytes.append(0x20)
        }
    }

    /// The index of the first text in which `phrase` occurs, or nil.
    func firstText(containing phrase: Speech) -> Int? {
        guard !phrase.bytes.isEmpty else {
            return nil
        }
        return self.bytes.withUnsafeBufferPointer { text in
            phrase.bytes.withUnsafeBufferPointer { pattern -> Int? in
                // The pattern opens with a space, so a match can start only at a space: check those.
                guard text.count >= pattern.count else {
                    return nil
                }
                var textIndex = 0
                for start in 0...(text.count - pattern.count) where text[start] <= 0x20 {
                    if text[start] == 0x0A {
                        textIndex += 1
                    } else if (1..<pattern.count).allSatisfy({ text[start + $0] == pattern[$0] }) {
                        return textIndex
                    }
                }
                return nil
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
