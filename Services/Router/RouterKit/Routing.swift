package import Foundation

/// What a handoff asks of its destination.
package struct Handoff: Equatable, Sendable {
    var callID: String
    var handoffID: String
    package var category: String
    package var skills: [String]
    var urgent: Bool
}

/// What the receiving side last reported of a destination.
struct Availability: Equatable, Sendable {
    var agentsReady: Int
    var agentsBusy: Int
    var queueLength: Int
    var at: Date
}

/// A destination's live state as the router sees it: reported availability and its own reservations.
package struct LiveState: Equatable, Sendable {
    /// Nothing known: no reported availability, no reservations.
    package init() {}

    init(availability: Availability? = nil, held: Int = 0, accepted: [Date] = []) {
        self.availability = availability
        self.held = held
        self.accepted = accepted
    }

    var availability: Availability?
    /// Reservations made and not yet accepted, declined, released or expired.
    var held = 0
    /// When each accepted, not yet released, reservation was accepted.
    var accepted: [Date] = []
    /// The routed-to-hello times observed of the handoffs answered at once.
    var ringAndGreet = RingAndGreet()
}

/// A destination's ring-and-greet time as observed: from the routing decision to the human's hello, for handoffs
/// routed while an agent was free (so that no wait in a queue is in it). The estimate is the median of the last
/// ``kept`` observations, once there are ``needed``: the median, because it is what minimises the mean absolute
/// error of the predictions, and a few calls rung for a long time do not drag it.
struct RingAndGreet: Equatable, Sendable {
    static let kept = 50
    static let needed = 5
    /// Seconds, oldest first, at most ``kept``.
    private(set) var observed: [Double] = []
    /// The median of `observed`, once there are ``needed``.
    private(set) var estimate: Double?

    mutating func observe(_ seconds: Double) {
        if self.observed.count == Self.kept {
            self.observed.removeFirst()
        }
        self.observed.append(seconds)
        guard self.observed.count >= Self.needed else {
            return
        }
        let sorted = self.observed.sorted()
        let middle = sorted.count / 2
        self.estimate = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The seconds a prediction uses: the learned estimate, unless the policy turns learning off, else its own.
    func seconds(_ policy: Policy) -> Double {
        policy.learnRingAndGreet ? self.estimate ?? policy.ringAndGreetSeconds : policy.ringAndGreetSeconds
    }
}

/// The time-to-live-human a destination would give a handoff routed to it now.
///
/// The model: with a free agent, the call is answered at once and the prediction is the ring-and-greet time (the
/// one observed at that destination, see ``RingAndGreet``, or the policy's).
/// Without one, the caller waits for the agents to finish the calls ahead of them. With every agent busy and
/// exponential handle times (the assumption behind Erlang C too), agents free up at a rate of `agents / handle`,
/// so the caller with `ahead` callers in front waits `(ahead + 1) * handle / agents` on average. Erlang C predicts
/// the average wait of a steady state from the arrival rate; the router knows the state itself (the reported
/// queue, and the reservations it made since), which predicts this caller's wait better, so no arrival rate is
/// needed.
struct Prediction: Equatable, Sendable {
    var seconds: Double
    var freeAgents: Int
    /// The reported availability is too old to count: the router's own bookkeeping counted instead.
    var stale: Bool

    init(destination: borrowing Destination, live: LiveState, policy: Policy, now: Date) {
        self.init(
            agents: destination.agents,
            averageHandleSeconds: destination.averageHandleSeconds,
            live: live,
            policy: policy,
            now: now
        )
    }

    /// The prediction for a destination of `agents` agents and that average handle time.
    init(agents: Int, averageHandleSeconds: Double, live: LiveState, policy: Policy, now: Date) {
        let staffed: Int
        if let report = live.availability {
            self.stale = now.timeIntervalSince(report.at) > policy.availabilityMaxAgeSeconds
        } else {
            self.stale = false
        }
        if let report = live.availability, !self.stale {
            // The report counts the agents as they were at `at`: the reservations held since, and those accepted
            // after it, are not in it yet. Callers already queued there go first.
            let acceptedSince = live.accepted.count { $0 > report.at }
            self.freeAgents = report.agentsReady - live.held - acceptedSince - report.queueLength
            staffed = report.agentsReady + report.agentsBusy
        } else {
            self.freeAgents = agents - live.held - live.accepted.count
            staffed = agents
        }
        let ahead = max(0, -self.freeAgents)
        let ringAndGreet = live.ringAndGreet.seconds(policy)
        if self.freeAgents >= 1 {
            self.seconds = ringAndGreet
        } else if staffed <= 0 {
            self.seconds = .infinity
        } else {
            self.seconds = ringAndGreet + Double(ahead + 1) * averageHandleSeconds / Double(staffed)
        }
    }

    var milliseconds: UInt32 {
        self.seconds.isFinite ? UInt32(min(self.seconds * 1000, Double(UInt32.max)).rounded()) : 0
    }
}

/// One destination's part in a decision.
struct Verdict: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        case filtered
        case candidate
        case chosen
    }

    var destinationID: String
    var kind: Kind
    var text: String
    var prediction: Prediction?
}

/// A routing decision, before it is stored.
package struct Decision: Equatable, Sendable {
    /// The chosen destination's index, or nil: nobody can take it now.
    package var chosen: Int?
    var prediction: Prediction?
    var verdicts: [Verdict]
    /// With no destination: the next moment a destination that would otherwise qualify opens.
    var nextOpening: (at: Date, destinationID: String)?

    package static func == (lhs: Decision, rhs: Decision) -> Bool {
        lhs.chosen == rhs.chosen && lhs.prediction == rhs.prediction && lhs.verdicts == rhs.verdicts
            && lhs.nextOpening?.at == rhs.nextOpening?.at
            && lhs.nextOpening?.destinationID == rhs.nextOpening?.destinationID
    }
}

extension RoutingConfiguration {
    /// Why each destination fails the rules that depend only on the handoff's category and skills (its skills,
    /// the category's certifications and live-context rule), in the destinations' order; nil where it passes.
    /// The same for every handoff of that shape until the configuration changes, so callers may keep it.
    package func fixedProblems(category: String, skills: [String]) -> [String?] {
        let rule = self.policy.categories[category] ?? CategoryRule()
        return self.destinations.map { destination in
            var problems: [String] = []
            let missingSkills = skills.filter { !destination.skills.contains($0) }
            if !missingSkills.isEmpty {
                problems.append(
                    "lacks skill\(missingSkills.count == 1 ? "" : "s") \(missingSkills.joined(separator: ", "))"
                )
            }
            let missingCertifications = rule.requires.subtracting(destination.certifications)
            if !missingCertifications.isEmpty {
                problems.append(
                    "\(category) requires certification \(missingCertifications.sorted().joined(separator: ", "))"
                )
            }
            if rule.requiresLiveContext && destination.context == .none {
                problems.append("\(category) requires a live brief, and its desktops cannot show one")
            }
            return problems.isEmpty ? nil : problems.joined(separator: "; ")
        }
    }

    /// Decides where `handoff` goes now: filters by the hard rules, predicts each candidate's time-to-live-human,
    /// then prefers the policy's kind within the target, overflows to any destination within the target, and
    /// otherwise takes the fastest within the maximum. An urgent handoff takes the fastest, whatever its cost.
    /// Destinations in `excluded` (they declined this handoff) are not offered. `fixed` is
    /// ``fixedProblems(category:skills:)`` for the handoff, when the caller kept it.
    package func decide(
        _ handoff: Handoff,
        live: (String) -> LiveState,
        now: Date,
        excluded: Set<String> = [],
        fixed: [String?]? = nil
    ) -> Decision {
        let fixed = fixed ?? self.fixedProblems(category: handoff.category, skills: handoff.skills)
        let prefer = self.policy.categories[handoff.category]?.prefer ?? self.policy.prefer
        var verdicts: [Verdict] = []
        var candidates: [Candidate] = []
        var nextOpening: (at: Date, destinationID: String)?
        verdicts.reserveCapacity(self.destinations.count + 1)
        // Each destination is read in place: a copy of a Destination retains and releases every one of its fields,
        // and a decision reads all of them.
        self.destinations.withUnsafeBufferPointer { destinations in
            for index in destinations.indices {
                var problems = excluded.contains(destinations[index].id) ? "declined this handoff" : nil
                if let fixed = fixed[index] {
                    problems = problems.map { $0 + "; " + fixed } ?? fixed
                }
                if !destinations[index].hours.isOpen(at: now) {
                    if problems == nil, let opens = destinations[index].hours.nextOpening(after: now),
                        nextOpening.map({ opens < $0.at }) ?? true
                    {
                        nextOpening = (opens, destinations[index].id)
                    }
                    problems = problems.map { $0 + "; closed now" } ?? "closed now"
                }
                if let problems {
                    verdicts.append(Verdict(destinationID: destinations[index].id, kind: .filtered, text: problems))
                    continue
                }
                let prediction = Prediction(
                    agents: destinations[index].agents,
                    averageHandleSeconds: destinations[index].averageHandleSeconds,
                    live: live(destinations[index].id),
                    policy: self.policy,
                    now: now
                )
                guard prediction.seconds <= self.policy.maxLiveHumanSeconds else {
                    let predicted =
                        prediction.seconds.isFinite
                        ? "\(Self.format(prediction.seconds)) s" : "no agent staffed, so never"
                    verdicts.append(
                        Verdict(
                            destinationID: destinations[index].id,
                            kind: .filtered,
                            text:
                                "predicted \(predicted), over the \(Self.format(self.policy.maxLiveHumanSeconds)) s maximum",
                            prediction: prediction
                        )
                    )
                    continue
                }
                candidates.append(
                    Candidate(
                        index: index,
                        verdict: verdicts.count,
                        prediction: prediction,
                        preferred: destinations[index].kind == prefer,
                        cost: destinations[index].costPerMinute
                    )
                )
                verdicts.append(
                    Verdict(
                        destinationID: destinations[index].id,
                        kind: .candidate,
                        text: Self.qualified(prediction),
                        prediction: prediction
                    )
                )
            }
        }
        guard !candidates.isEmpty else {
            return Decision(chosen: nil, prediction: nil, verdicts: verdicts, nextOpening: nextOpening)
        }
        let target = self.policy.targetLiveHumanSeconds
        let winner: Candidate
        let why: String
        let withinTarget = candidates.filter { $0.prediction.seconds <= target }
        if handoff.urgent {
            winner = candidates.min(by: Candidate.better)!
            why = "urgent: the fastest qualified destination, whatever its cost"
        } else if let best = withinTarget.lazy.filter(\.preferred).min(by: Candidate.better) {
            winner = best
            why = "\(prefer.map(Self.kindName) ?? "") preferred, and within the \(Self.format(target)) s target"
        } else if let best = withinTarget.min(by: Candidate.better) {
            winner = best
            why =
                prefer == nil
                ? "the fastest within the \(Self.format(target)) s target"
                : "no \(Self.kindName(prefer!)) destination within the \(Self.format(target)) s target: overflow"
        } else {
            winner = candidates.min(by: Candidate.better)!
            why =
                "none within the \(Self.format(target)) s target: the fastest within the \(Self.format(self.policy.maxLiveHumanSeconds)) s maximum"
        }
        verdicts[winner.verdict].kind = .chosen
        verdicts[winner.verdict].text = "chosen: \(why); predicted \(Self.format(winner.prediction.seconds)) s"
        return Decision(chosen: winner.index, prediction: winner.prediction, verdicts: verdicts, nextOpening: nil)
    }

    /// A destination that passed every rule, with what ranks it.
    private struct Candidate {
        var index: Int
        /// Its verdict's position in the decision.
        var verdict: Int
        var prediction: Prediction
        /// Of the kind the handoff's category (or the policy) prefers.
        var preferred: Bool
        var cost: Double

        /// Fastest first; then the preferred kind, the lower cost, the earlier in the file.
        static func better(_ left: Candidate, _ right: Candidate) -> Bool {
            if left.prediction.seconds != right.prediction.seconds {
                return left.prediction.seconds < right.prediction.seconds
            }
            if left.preferred != right.preferred {
                return left.preferred
            }
            if left.cost != right.cost {
                return left.cost < right.cost
            }
            return left.index < right.index
        }
    }

    /// A candidate's verdict text.
    static func qualified(_ prediction: Prediction) -> String {
        "qualified; predicted \(Self.format(prediction.seconds)) s"
            + (prediction.stale ? " (availability stale: own bookkeeping)" : "")
    }

    static func kindName(_ kind: Destination.Kind) -> String {
        kind == .inHouse ? "in-house" : "partner"
    }

    static func format(_ seconds: Double) -> String {
        let tenths = (seconds * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths))" : "\(tenths)"
    }
}
