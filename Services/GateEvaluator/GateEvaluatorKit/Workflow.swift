/// A persona's workflow: its steps, the facts (slots) it captures, and the gates where a human appears.
package struct Workflow: Equatable, Sendable {
    package var id: String
    var version: String
    var persona: String
    var steps: [String]
    /// The facts the AI captures (`identity.name`, `account.id`, ...); a gate's `brief_lead` names some of them.
    var slots: [String]
    package var gates: [Gate]
    /// The skills an undesigned escalation (one that matches no gate) is routed with.
    var defaultSkills: [String]
}

/// A designed moment where a human appears: when its condition holds, the call is handed off.
package struct Gate: Equatable, Sendable {
    var id: String
    /// `payment`, `grief`, `judgement`, `legal`, `ethical`, `caller_request`, or a custom word.
    var category: String
    var when: Condition
    var skills: [String]
    var priority: Priority
    /// The slots the human must see first.
    var briefLead: [String]
    /// Fires at most once per call.
    var once: Bool
}

/// How urgent a handoff is; when several gates match, the highest wins.
enum Priority: Int, Comparable, CaseIterable, Sendable {
    case low
    case normal
    case high
    case urgent

    var name: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        case .urgent: "urgent"
        }
    }

    static func < (lhs: Priority, rhs: Priority) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// A declarative condition over what the call has established: no code, no expression strings.
indirect enum Condition: Equatable, Sendable {
    /// The call's detected intents include one of these.
    case intent([String])
    /// A slot passes a test.
    case slot(String, SlotTest)
    /// The caller said one of these phrases (case-insensitive, whole words).
    case said([Phrase])
    /// The call has reached this workflow step.
    case step(String)
    case all([Condition])
    case any([Condition])
    case not(Condition)
}

/// A phrase a `said` condition listens for, reduced to its words once, when the workflow loads.
struct Phrase: Equatable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    let text: String
    let pattern: Speech

    init(_ text: String) {
        self.text = text
        self.pattern = Speech(phrase: text)
    }

    init(stringLiteral text: String) {
        self.init(text)
    }

    var description: String { self.text }

    static func == (lhs: Phrase, rhs: Phrase) -> Bool {
        lhs.text == rhs.text
    }
}

/// What a slot's value is tested against. Numbers compare as numbers.
enum SlotTest: Equatable, Sendable {
    case exists(Bool)
    case equals(SlotValue)
    case greaterThan(Double)
    case atLeast(Double)
    case lessThan(Double)
    case atMost(Double)
    case isIn([SlotValue])
}

/// A slot's value as the AI captured it.
package enum SlotValue: Equatable, Sendable, CustomStringConvertible {
    case text(String)
    case number(Double)
    case flag(Bool)

    /// The value as a number: a number, or text that reads as one ("250", "250.00").
    var number: Double? {
        switch self {
        case .number(let value): value
        case .text(let text):
            text.first == " " || text.last == " " ? Double(text.trimmingCharacters(in: " ")) : Double(text)
        case .flag: nil
        }
    }

    package var description: String {
        switch self {
        case .text(let text): text
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? "\(Int64(number))" : "\(number)"
        case .flag(let flag): "\(flag)"
        }
    }

    /// Equal as numbers when both read as numbers ("250" equals 250), otherwise as text, case-insensitively.
    func matches(_ other: SlotValue) -> Bool {
        if case .text(let left) = self, case .text(let right) = other {
            // Text against text, the common case: compare without allocating, unless either is not ASCII.
            if left.utf8.allSatisfy({ $0 < 0x80 }) && right.utf8.allSatisfy({ $0 < 0x80 }) {
                if left.utf8.count == right.utf8.count
                    && left.utf8.elementsEqual(right.utf8, by: { Self.lowercase($0) == Self.lowercase($1) })
                {
                    return true
                }
                if let leftNumber = self.number, let rightNumber = other.number {
                    return leftNumber == rightNumber  // "250.00" equals "250"
                }
                return false
            }
        }
        if let left = self.number, let right = other.number {
            return left == right
        }
        return self.description.lowercased() == other.description.lowercased()
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
    }
}

extension String {
    fileprivate func trimmingCharacters(in characters: Character) -> String {
        var text = Substring(self)
        while text.first == characters { text.removeFirst() }
        while text.last == characters { text.removeLast() }
        return String(text)
    }
}
