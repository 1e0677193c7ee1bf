import BatonRuntime
import Yams

/// A range a simulated time or amount is drawn from, uniformly: `[low, high]` in the file, or one number.
struct Draw: Equatable, Sendable {
    var low: Double
    var high: Double

    func draw(_ random: inout SplitMix64) -> Double {
        self.high > self.low ? Double.random(in: self.low...self.high, using: &random) : self.low
    }
}

/// One kind of call in the mix: which workflow, what the caller tells the AI, why they call, and what the human
/// who takes it needs to know.
struct CallKind: Equatable, Sendable {
    var name: String
    var workflow: String
    /// Relative weight in the mix.
    var share: Double
    /// The facts the caller gives the AI, in order (slot names of the workflow).
    var facts: [String]
    /// How the AI verifies the caller; empty: not verified.
    var verified: String
    /// The intent the AI detects at the end of the script; empty: none (the AI resolves the call itself).
    var intent: String
    /// The facts the human needs: each one the brief lacks, they ask the caller for.
    var needs: [String]
    /// Whether the caller asks for a person (so that, without gates, the AI escalates).
    var insists: Bool
    /// For `refund_amount`: the amount drawn.
    var amount: Draw
}

/// A stretch of the day with its arrival rate.
struct ArrivalPhase: Equatable, Sendable {
    var name: String
    var minutes: Double
    var perMinute: Double
}

/// A simulation: `config/simulations/*.yaml`, read with every problem at its line and column.
struct Scenario: Equatable, Sendable {
    var seed: UInt64 = 1
    var calls = 100
    var concurrency = 10
    /// Share of calls whose AI gets confused and escalates outside every gate.
    var confusedShare = 0.0
    /// How long a caller waits on hold for a human before hanging up (s).
    var patience = Draw(low: 30, high: 120)
    /// Between the events of the AI's script (s).
    var turnGap = Draw(low: 1, high: 3)
    /// Humans per destination.
    var agents: [String: Int] = [:]
    /// From the brief's arrival to its being on screen (ms).
    var render = Draw(low: 50, high: 300)
    /// From the transfer to the human answering (s).
    var ring = Draw(low: 1, high: 3)
    /// Reading time per fact on the brief (s), before the human says hello.
    var readPerFact = 0.3
    /// Asking for a fact and hearing it again (s).
    var askFact = Draw(low: 4, high: 8)
    var declineShare = 0.0
    /// Share of transfers the telephony cannot complete (the destination answers SIP 503).
    var failedTransferShare = 0.0
    /// In failover mode, the one queue every escalation is transferred to; nil: where the router says.
    var failoverQueue: String?
    /// From hello to hand back (s).
    var handle = Draw(low: 30, high: 180)
    var mix: [CallKind] = []
    /// Calls per minute, phase by phase; empty: `concurrency` calls at once, each ended call making room.
    var arrivals: [ArrivalPhase] = []

    static let keys = [
        "seed", "calls", "concurrency", "confused_ai_share", "caller_patience_s", "turn_gap_s", "agents", "human",
        "mix",
        "failover_queue", "arrivals", "failed_transfer_share",
    ]
    static let phaseKeys = ["name", "minutes", "per_minute"]
    static let humanKeys = ["render_ms", "ring_s", "read_s_per_fact", "ask_fact_s", "decline_share", "handle_s"]
    static let kindKeys = ["name", "workflow", "share", "facts", "verified", "intent", "needs", "insists", "amount"]

    /// Reads `text` (from `file`); throws every problem found, each with `file:line:column`.
    static func parse(_ text: String, file: String) throws(InvalidConfigFile) -> Scenario {
        var reader = YAMLReader(file: file)
        var scenario = Scenario()
        if let root = reader.root(of: text, expecting: "a simulation (calls, agents, human, mix)"),
            let top = reader.mapping(root, "the simulation")
        {
            let fields = reader.fields(of: top, known: Self.keys, in: "the simulation")
            scenario.read(fields, &reader, root: root)
        }
        guard reader.problems.isEmpty else {
            throw InvalidConfigFile(problems: reader.problems)
        }
        return scenario
    }

    private mutating func read(_ fields: [String: Node], _ reader: inout YAMLReader, root: Node) {
        if let seed = reader.number(fields["seed"], "seed") {
            self.seed = UInt64(seed)
        }
        if let calls = reader.number(fields["calls"], "calls", atLeast: 1) {
            self.calls = Int(calls)
        }
        if let concurrency = reader.number(fields["concurrency"], "concurrency", atLeast: 1) {
            self.concurrency = Int(concurrency)
        }
        if let share = Self.share(fields["confused_ai_share"], "confused_ai_share", &reader) {
            self.confusedShare = share
        }
        self.patience = Self.draw(fields["caller_patience_s"], "caller_patience_s", &reader) ?? self.patience
        self.failedTransferShare =
            Self.share(fields["failed_transfer_share"], "failed_transfer_share", &reader) ?? self.failedTransferShare
        self.turnGap = Self.draw(fields["turn_gap_s"], "turn_gap_s", &reader) ?? self.turnGap
        if let node = fields["agents"], let agents = reader.mapping(node, "agents") {
            for (key, value) in agents {
                let name = key.string ?? ""
                if let count = reader.number(value, "agents.\(name)", atLeast: 1) {
                    self.agents[name] = Int(count)
                }
            }
        } else if fields["agents"] == nil {
            reader.report(at: root, "agents is missing; expected the humans per destination, e.g. billing-in-house: 4")
        }
        self.failoverQueue = reader.string(fields["failover_queue"], "failover_queue", in: root)
        if let queue = self.failoverQueue, !self.agents.isEmpty, self.agents[queue] == nil {
            reader.report(
                at: fields["failover_queue"],
                "failover_queue '\(queue)' has no agents; expected one of \(self.agents.keys.sorted().joined(separator: ", "))"
            )
        }
        if let node = fields["human"], let human = reader.mapping(node, "human") {
            let values = reader.fields(of: human, known: Self.humanKeys, in: "human")
            self.render = Self.draw(values["render_ms"], "human.render_ms", &reader) ?? self.render
            self.ring = Self.draw(values["ring_s"], "human.ring_s", &reader) ?? self.ring
            self.readPerFact = reader.number(values["read_s_per_fact"], "human.read_s_per_fact") ?? self.readPerFact
            self.askFact = Self.draw(values["ask_fact_s"], "human.ask_fact_s", &reader) ?? self.askFact
            self.declineShare = Self.share(values["decline_share"], "human.decline_share", &reader) ?? 0
            self.handle = Self.draw(values["handle_s"], "human.handle_s", &reader) ?? self.handle
        }
        for (index, item) in (fields["arrivals"].flatMap { reader.sequence($0, "arrivals") } ?? []).enumerated() {
            let what = "arrivals[\(index)]"
            guard let mapping = reader.mapping(item, what) else {
                continue
            }
            let values = reader.fields(of: mapping, known: Self.phaseKeys, in: what)
            let minutes = reader.number(values["minutes"], "\(what).minutes")
            let rate = reader.number(values["per_minute"], "\(what).per_minute")
            guard let minutes, let rate, minutes > 0, rate > 0 else {
                if values["minutes"] == nil || values["per_minute"] == nil {
                    reader.report(at: item, "\(what) needs minutes and per_minute, e.g. {minutes: 30, per_minute: 12}")
                } else if let minutes, let rate {
                    reader.report(
                        at: item,
                        "\(what) has minutes \(minutes) and per_minute \(rate); expected both above 0"
                    )
                }
                continue
            }
            let name = reader.string(values["name"], "\(what).name", in: item) ?? "phase \(index + 1)"
            self.arrivals.append(ArrivalPhase(name: name, minutes: minutes, perMinute: rate))
        }
        guard let node = fields["mix"] else {
            reader.report(at: root, "mix is missing; expected a list of call kinds (workflow, share, facts, ...)")
            return
        }
        for (index, item) in (reader.sequence(node, "mix") ?? []).enumerated() {
            if let kind = Self.kind(item, index: index, &reader) {
                self.mix.append(kind)
            }
        }
        if self.mix.isEmpty, reader.problems.isEmpty {
            reader.report(at: node, "mix is empty; expected at least one call kind")
        }
    }

    private static func kind(_ node: Node, index: Int, _ reader: inout YAMLReader) -> CallKind? {
        let what = "mix[\(index)]"
        guard let mapping = reader.mapping(node, what) else {
            return nil
        }
        let fields = reader.fields(of: mapping, known: Self.kindKeys, in: what)
        let workflow = reader.string(fields["workflow"], "\(what).workflow", required: true, in: node)
        let share = reader.number(fields["share"], "\(what).share")
        if fields["share"] == nil {
            reader.report(at: node, "\(what).share is missing; expected the kind's weight in the mix, e.g. 30")
        }
        let facts = fields["facts"].flatMap { reader.strings($0, "\(what).facts") } ?? []
        let needs = fields["needs"].flatMap { reader.strings($0, "\(what).needs") } ?? []
        guard let workflow, let share else {
            return nil
        }
        return CallKind(
            name: reader.string(fields["name"], "\(what).name", in: node) ?? workflow,
            workflow: workflow,
            share: share,
            facts: facts,
            verified: reader.string(fields["verified"], "\(what).verified", in: node) ?? "",
            intent: reader.string(fields["intent"], "\(what).intent", in: node) ?? "",
            needs: needs,
            insists: reader.flag(fields["insists"], "\(what).insists") ?? false,
            amount: Self.draw(fields["amount"], "\(what).amount", &reader) ?? Draw(low: 20, high: 80)
        )
    }

    private static func share(_ node: Node?, _ what: String, _ reader: inout YAMLReader) -> Double? {
        guard let node, let value = reader.number(node, what) else {
            return nil
        }
        guard value <= 1 else {
            reader.report(at: node, "\(what) is \(value); expected a share from 0 to 1")
            return nil
        }
        return value
    }

    /// `[low, high]` or one number.
    private static func draw(_ node: Node?, _ what: String, _ reader: inout YAMLReader) -> Draw? {
        guard let node else {
            return nil
        }
        if node.scalar != nil {
            return reader.number(node, what).map { Draw(low: $0, high: $0) }
        }
        guard let items = reader.sequence(node, what) else {
            return nil
        }
        let numbers = items.compactMap { reader.number($0, what) }
        guard items.count == 2, numbers.count == 2, numbers[0] <= numbers[1] else {
            if numbers.count == items.count {
                reader.report(at: node, "\(what) must be [low, high] with low <= high, or one number")
            }
            return nil
        }
        return Draw(low: numbers[0], high: numbers[1])
    }

    /// The kind of call number `index` (the same for the same seed, whatever the mode).
    func kind(_ random: inout SplitMix64) -> CallKind {
        let total = self.mix.reduce(0) { $0 + $1.share }
        var pick = Double.random(in: 0..<max(total, 1e-9), using: &random)
        for kind in self.mix {
            pick -= kind.share
            if pick < 0 {
                return kind
            }
        }
        return self.mix[self.mix.count - 1]
    }
}
