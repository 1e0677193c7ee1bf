import BatonProto
import BatonRuntime

/// Where an event sits in its handoff's order: by when it happened, then by its id, so that two events at the
/// same millisecond still have one order whatever order they arrived in.
struct Stamp: Comparable, Sendable {
    var at: Int64
    var eventID: String

    static func < (lhs: Stamp, rhs: Stamp) -> Bool {
        (lhs.at, lhs.eventID) < (rhs.at, rhs.eventID)
    }
}

/// What a handoff's stored events say, folded into one value.
///
/// Every part is kept by a rule that does not depend on arrival order: the earliest event of each kind, each
/// attribute from the earliest event that carries it, every `caller_repeated`. Each stored event is merged once
/// (the store refuses a repeated event id before it gets here), so the same set of events gives the same
/// timeline whatever order, and however late, they came in.
struct Timeline: Sendable {
    /// An attribute's value and the event it came from.
    struct Attribute: Sendable {
        var value: String
        var from: Stamp
    }

    enum Key: Int, CaseIterable, Sendable {
        case callID, workflow, gate, category, destination, destinationKind, origin
    }

    /// The earliest event of each kind, by `EventKind` raw value.
    private(set) var first: [Stamp?] = Array(repeating: nil, count: Self.kinds)
    /// Every caller_repeated event, with the slot repeated.
    private(set) var repeats: [(stamp: Stamp, slot: String)] = []
    private(set) var attributes: [Attribute?] = Array(repeating: nil, count: Key.allCases.count)
    private(set) var events = 0

    /// One slot per event kind the protos define, so that a kind added there is kept here with no other change.
    static let kinds = Baton_Metrics_V1_EventKind.tableSize

    mutating func merge(_ event: Baton_Metrics_V1_Event) {
        let stamp = Stamp(at: event.atUnixMs, eventID: event.eventID)
        let kind = event.kind.rawValue
        if kind > 0 && kind < Self.kinds, self.first[kind].map({ stamp < $0 }) ?? true {
            self.first[kind] = stamp
        }
        if event.kind == .callerRepeated {
            self.repeats.append((stamp, event.repeatedSlot))
        }
        self.offer(.callID, event.callID, stamp)
        self.offer(.workflow, event.workflow, stamp)
        self.offer(.gate, event.gate, stamp)
        self.offer(.category, event.category, stamp)
        self.offer(.destination, event.destination, stamp)
        self.offer(.destinationKind, event.destinationKind, stamp)
        if event.origin != .unspecified {
            self.offer(.origin, String(event.origin.rawValue), stamp)
        }
        self.events += 1
    }

    /// Adds what `other` folded from other events of the same handoff: the result is the timeline of both sets of
    /// events, as if each had been merged here, since every part is kept by a rule that ignores order.
    mutating func absorb(_ other: Timeline) {
        for kind in other.first.indices {
            if let stamp = other.first[kind], self.first[kind].map({ stamp < $0 }) ?? true {
                self.first[kind] = stamp
            }
        }
        self.repeats += other.repeats
        for key in other.attributes.indices {
            if let attribute = other.attributes[key], self.attributes[key].map({ attribute.from < $0.from }) ?? true {
                self.attributes[key] = attribute
            }
        }
        self.events += other.events
    }

    private mutating func offer(_ key: Key, _ value: String, _ stamp: Stamp) {
        guard !value.isEmpty, self.attributes[key.rawValue].map({ stamp < $0.from }) ?? true else {
            return
        }
        self.attributes[key.rawValue] = Attribute(value: value, from: stamp)
    }

    func first(_ kind: Baton_Metrics_V1_EventKind) -> Stamp? {
        self.first[kind.rawValue]
    }

    subscript(key: Key) -> String {
        self.attributes[key.rawValue]?.value ?? ""
    }

    var origin: Baton_Metrics_V1_Origin {
        Int(self[.origin]).flatMap(Baton_Metrics_V1_Origin.init(rawValue:)) ?? .unspecified
    }

    /// The repeated slots in the order the caller repeated them.
    var repeatedSlots: [String] {
        self.repeats.sorted { $0.stamp < $1.stamp }.map(\.slot)
    }

    /// When the handoff started: its gate fired, else its earliest event.
    var start: Int64 {
        if let fired = self.first(.gateFired) {
            return fired.at
        }
        // Every event is the first of its kind or later, so the earliest first is the earliest event.
        var earliest = Int64.max
        for case let stamp? in self.first where stamp.at < earliest {
            earliest = stamp.at
        }
        return earliest == .max ? 0 : earliest
    }
}

/// The thresholds a handoff is judged by.
struct Judging: Sendable {
    /// A human greeting later than this makes a failover (ms).
    var maxLiveHumanMs = Int64(HandoffTargets.maxLiveHumanSeconds * 1000)
    /// A handoff with no greeting this long after its start is abandoned (ms).
    var abandonAfterMs: Int64 = 120_000
}

/// A handoff's figures and classification, from its timeline and the time now.
///
/// The clock matters only to a handoff nobody has greeted: it is in progress until its call ends or
/// `abandonAfterMs` passes, then abandoned. Everything else follows from the events alone.
struct Assessment: Equatable, Sendable {
    var classification: Baton_Metrics_V1_Classification
    var reasons: [Baton_Metrics_V1_FailoverReason]
    var timeToContextReadyMs: Int64?
    var timeToLiveHumanMs: Int64?
    var repeats: Int
    var bucket: Baton_Metrics_V1_Bucket

    /// The upper bounds of the time-to-live-human buckets, ms, each inclusive: the target window's ends, the point
    /// where the caller notices, and the point where they are lost.
    static let bucketBounds: [Int64] = [
        HandoffTargets.liveHumanWindowSeconds.lowerBound, HandoffTargets.liveHumanWindowSeconds.upperBound,
        HandoffTargets.maxLiveHumanSeconds, HandoffTargets.lostAfterSeconds,
    ].map { Int64($0 * 1000) }

    init(_ timeline: Timeline, now: Int64, judging: Judging) {
        let fired = timeline.first(.gateFired)
        let displayed = timeline.first(.briefDisplayed)
        let greeted = timeline.first(.humanGreeted)
        self.timeToContextReadyMs = fired.flatMap { fired in displayed.map { max(0, $0.at - fired.at) } }
        self.timeToLiveHumanMs = fired.flatMap { fired in greeted.map { max(0, $0.at - fired.at) } }
        self.repeats = timeline.repeats.count
        self.bucket = Self.bucket(self.timeToLiveHumanMs)

        var reasons: [Baton_Metrics_V1_FailoverReason] = []
        let designed =
            fired != nil
            && (timeline.origin == .designed || (timeline.origin == .unspecified && !timeline[.gate].isEmpty))
        if !designed {
            reasons.append(.undesigned)
        }
        if let connected = timeline.first(.humanConnected) ?? greeted,
            displayed.map({ $0.at > connected.at }) ?? true
        {
            reasons.append(.noBriefBeforeConnect)
        }
        if let time = self.timeToLiveHumanMs, time > judging.maxLiveHumanMs {
            reasons.append(.greetedLate)
        }
        if self.repeats > 0 {
            reasons.append(.repeated)
        }
        if timeline.first(.transferFailed) != nil {
            reasons.append(.transferFailed)
        }
        let ended = timeline.first(.callEnded) != nil
        let abandoned = greeted == nil && (ended || now - timeline.start > judging.abandonAfterMs)
        if abandoned {
            reasons.append(.abandoned)
        }
        self.reasons = reasons
        if greeted == nil && !abandoned {
            self.classification = .inProgress
        } else {
            self.classification = reasons.isEmpty ? .handoff : .failover
        }
    }

    static func bucket(_ timeToLiveHumanMs: Int64?) -> Baton_Metrics_V1_Bucket {
        guard let time = timeToLiveHumanMs else {
            return .unspecified
        }
        let buckets: [Baton_Metrics_V1_Bucket] = [.under4S, .from4To6S, .from6To8S, .from8To20S]
        return zip(Self.bucketBounds, buckets).first { time <= $0.0 }?.1 ?? .over20S
    }

    /// The reason in words, with its figure where it has one.
    func text(_ reason: Baton_Metrics_V1_FailoverReason, slots: [String], judging: Judging) -> String {
        switch reason {
        case .undesigned: "undesigned escalation: no designed gate fired"
        case .noBriefBeforeConnect: "no brief on screen before the human connected"
        case .greetedLate:
            "greeted after \(Self.seconds(self.timeToLiveHumanMs ?? 0)) s (over \(Self.seconds(judging.maxLiveHumanMs)) s)"
        case .repeated:
            "repeated \(self.repeats) fact\(self.repeats == 1 ? "" : "s")"
                + (slots.allSatisfy(\.isEmpty) ? "" : ": " + slots.filter { !$0.isEmpty }.joined(separator: ", "))
        case .transferFailed: "transfer failed"
        case .abandoned: "abandoned before a human greeted"
        default: "unknown"
        }
    }

    /// Seconds with one decimal: 9400 -> "9.4", 8000 -> "8".
    static func seconds(_ milliseconds: Int64) -> String {
        let tenths = (milliseconds + 50) / 100
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}
