import BatonProto
import Testing

@testable import MetricsCollectorKit

/// Builds a handoff's events: `at` is ms after the gate fired, which is at `t0`.
struct Events {
    static let t0: Int64 = 1_790_000_000_000
    var handoffID = "h-1"
    var events: [Baton_Metrics_V1_Event] = []

    mutating func add(
        _ kind: Baton_Metrics_V1_EventKind,
        at offset: Int64,
        _ configure: (inout Baton_Metrics_V1_Event) -> Void = { _ in }
    ) {
        var event = Baton_Metrics_V1_Event()
        event.eventID = "\(self.handoffID)-e\(self.events.count)"
        event.handoffID = self.handoffID
        event.callID = "call-\(self.handoffID)"
        event.kind = kind
        event.atUnixMs = Self.t0 + offset
        configure(&event)
        self.events.append(event)
    }

    /// A handoff done right: a designed gate, the brief on screen at 1.2 s, connected at 3 s, greeted at
    /// `greeted` ms, call ended at 5 minutes.
    static func designed(_ handoffID: String = "h-1", greeted: Int64 = 4_500) -> Events {
        var events = Events(handoffID: handoffID)
        events.add(.gateFired, at: 0) {
            $0.workflow = "billing"
            $0.gate = "payment"
            $0.category = "payment"
            $0.origin = .designed
        }
        events.add(.briefReady, at: 800)
        events.add(.routed, at: 900) {
            $0.destination = "billing-in-house"
            $0.destinationKind = "in_house"
        }
        events.add(.briefDelivered, at: 1_000)
        events.add(.briefDisplayed, at: 1_200)
        events.add(.transferStarted, at: 1_300)
        events.add(.humanConnected, at: min(3_000, greeted))
        events.add(.humanGreeted, at: greeted)
        events.add(.callEnded, at: 300_000)
        return events
    }

    var timeline: Timeline {
        var timeline = Timeline()
        self.events.forEach { timeline.merge($0) }
        return timeline
    }

    func assess(now: Int64 = Events.t0 + 3_600_000, judging: Judging = Judging()) -> Assessment {
        Assessment(self.timeline, now: now, judging: judging)
    }

    mutating func remove(_ kind: Baton_Metrics_V1_EventKind) {
        self.events.removeAll { $0.kind == kind }
    }

    mutating func edit(_ kind: Baton_Metrics_V1_EventKind, _ change: (inout Baton_Metrics_V1_Event) -> Void) {
        for index in self.events.indices where self.events[index].kind == kind {
            change(&self.events[index])
        }
    }
}

@Suite("Classification: each rule on its own")
struct ClassificationTests {
    @Test("a designed gate, brief before connect, greeted in 4.5 s, no repeats: a handoff in the target window")
    func handoff() {
        let assessment = Events.designed().assess()
        #expect(assessment.classification == .handoff)
        #expect(assessment.reasons == [])
        #expect(assessment.timeToContextReadyMs == 1_200)
        #expect(assessment.timeToLiveHumanMs == 4_500)
        #expect(assessment.bucket == .from4To6S)
    }

    @Test("an undesigned escalation is a failover, even when everything else went well")
    func undesigned() {
        var events = Events.designed()
        events.edit(.gateFired) { $0.origin = .undesigned }
        #expect(events.assess().classification == .failover)
        #expect(events.assess().reasons == [.undesigned])
        // No origin given: a named gate is designed, no gate is not.
        events.edit(.gateFired) { $0.origin = .unspecified }
        #expect(events.assess().reasons == [])
        events.edit(.gateFired) { $0.gate = "" }
        #expect(events.assess().reasons == [.undesigned])
    }

    @Test("no gate_fired: undesigned, and no times to measure")
    func noGateFired() {
        var events = Events.designed()
        events.remove(.gateFired)
        let assessment = events.assess()
        #expect(assessment.reasons == [.undesigned])
        #expect(assessment.timeToLiveHumanMs == nil && assessment.bucket == .unspecified)
    }

    @Test("the brief after the human connected, or never on screen: no brief before connect")
    func briefAfterConnect() {
        var events = Events.designed()
        events.edit(.briefDisplayed) { $0.atUnixMs = Events.t0 + 3_001 }
        #expect(events.assess().reasons == [.noBriefBeforeConnect])
        // At the same millisecond counts as before.
        events.edit(.briefDisplayed) { $0.atUnixMs = Events.t0 + 3_000 }
        #expect(events.assess().reasons == [])
        events.remove(.briefDisplayed)
        #expect(events.assess().reasons == [.noBriefBeforeConnect])
        #expect(events.assess().timeToContextReadyMs == nil)
        // Without human_connected, the greeting is the moment of connection.
        events = Events.designed()
        events.remove(.humanConnected)
        events.edit(.briefDisplayed) { $0.atUnixMs = Events.t0 + 4_600 }
        #expect(events.assess().reasons == [.noBriefBeforeConnect])
    }

    @Test("greeted at exactly 8 s is within; 8.001 s is a failover")
    func greetedLate() {
        #expect(Events.designed(greeted: 8_000).assess().classification == .handoff)
        let late = Events.designed(greeted: 8_001).assess()
        #expect(late.classification == .failover && late.reasons == [.greetedLate])
        #expect(late.text(.greetedLate, slots: [], judging: Judging()) == "greeted after 8 s (over 8 s)")
        // The threshold is configurable.
        #expect(
            Events.designed(greeted: 6_500).assess(judging: Judging(maxLiveHumanMs: 6_000)).reasons == [.greetedLate]
        )
    }

    @Test("each repeated fact counts, with its slot")
    func repeated() {
        var events = Events.designed()
        events.add(.callerRepeated, at: 9_000) { $0.repeatedSlot = "postcode" }
        events.add(.callerRepeated, at: 7_000) { $0.repeatedSlot = "account_number" }
        let assessment = events.assess()
        #expect(assessment.classification == .failover && assessment.reasons == [.repeated])
        #expect(assessment.repeats == 2)
        #expect(events.timeline.repeatedSlots == ["account_number", "postcode"])
        #expect(
            assessment.text(.repeated, slots: events.timeline.repeatedSlots, judging: Judging())
                == "repeated 2 facts: account_number, postcode"
        )
    }

    @Test("a failed transfer is a failover, even when a later transfer reached a human")
    func transferFailed() {
        var events = Events.designed()
        events.add(.transferFailed, at: 2_000)
        #expect(events.assess().reasons == [.transferFailed])
    }

    @Test("not greeted: in progress, then abandoned when the call ends or the time passes")
    func abandoned() {
        var events = Events.designed()
        events.remove(.humanGreeted)
        events.remove(.humanConnected)
        events.remove(.callEnded)
        let judging = Judging(abandonAfterMs: 120_000)
        let waiting = events.assess(now: Events.t0 + 119_999, judging: judging)
        #expect(waiting.classification == .inProgress && waiting.reasons == [])
        #expect(waiting.bucket == .unspecified)
        let gone = events.assess(now: Events.t0 + 120_001, judging: judging)
        #expect(gone.classification == .failover && gone.reasons == [.abandoned])
        events.add(.callEnded, at: 30_000)
        let hungUp = events.assess(now: Events.t0 + 31_000, judging: judging)
        #expect(hungUp.classification == .failover && hungUp.reasons == [.abandoned])
    }

    @Test("every reason that applies is listed")
    func everyReason() {
        var events = Events.designed(greeted: 25_000)
        events.edit(.gateFired) { $0.origin = .undesigned }
        events.remove(.briefDisplayed)
        events.add(.callerRepeated, at: 26_000) { $0.repeatedSlot = "name" }
        events.add(.transferFailed, at: 2_000)
        #expect(
            events.assess().reasons == [.undesigned, .noBriefBeforeConnect, .greetedLate, .repeated, .transferFailed]
        )
        #expect(events.assess().bucket == .over20S)
    }

    @Test("buckets hold their upper bound: 4, 6, 8 and 20 s")
    func buckets() {
        let expected: [(Int64, Baton_Metrics_V1_Bucket)] = [
            (0, .under4S), (4_000, .under4S), (4_001, .from4To6S), (6_000, .from4To6S), (6_001, .from6To8S),
            (8_000, .from6To8S), (8_001, .from8To20S), (20_000, .from8To20S), (20_001, .over20S),
        ]
        for (time, bucket) in expected {
            #expect(Assessment.bucket(time) == bucket, "\(time) ms")
        }
        #expect(Assessment.bucket(nil) == .unspecified)
    }

    @Test("attributes come from the earliest event that carries them, whatever the order")
    func attributes() {
        var events = Events.designed()
        events.add(.humanGreeted, at: 4_400) { $0.destination = "partner-bpo" }
        events.edit(.routed) { $0.destination = "billing-in-house" }
        let forward = events.timeline
        var backward = Timeline()
        events.events.reversed().forEach { backward.merge($0) }
        #expect(forward[.destination] == "billing-in-house" && backward[.destination] == "billing-in-house")
        #expect(forward.first(.humanGreeted)?.at == Events.t0 + 4_400)
        #expect(backward.first(.humanGreeted)?.at == Events.t0 + 4_400)
        #expect(backward[.workflow] == "billing" && backward.origin == .designed)
    }
}
