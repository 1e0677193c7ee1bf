import Foundation
import Testing

@testable import RouterKit

/// A moment given as local time in a zone.
func moment(_ text: String, in zone: String) -> Date {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: zone)
    formatter.dateFormat = "yyyy-MM-dd HH:mm"
    return formatter.date(from: text)!
}

func destination(
    _ id: String,
    _ kind: Destination.Kind = .inHouse,
    skills: Set<String> = ["billing"],
    certifications: Set<String> = [],
    hours: Hours = .always(),
    agents: Int = 2,
    handle: Double = 300,
    cost: Double = 1,
    context: Destination.Context = .live
) -> Destination {
    Destination(
        id: id,
        kind: kind,
        skills: skills,
        certifications: certifications,
        hours: hours,
        transfer: "sip:\(id)@example",
        agents: agents,
        averageHandleSeconds: handle,
        costPerMinute: cost,
        context: context
    )
}

func handoff(category: String = "judgement", skills: [String] = ["billing"], urgent: Bool = false) -> Handoff {
    Handoff(callID: "call-1", handoffID: "h-1", category: category, skills: skills, urgent: urgent)
}

@Suite("Opening hours")
struct HoursTests {
    let dublin = Hours(
        timeZone: TimeZone(identifier: "Europe/Dublin")!,
        ranges: [Hours.Range(days: [1, 2, 3, 4, 5], opens: 8 * 60, closes: 20 * 60)],
        closedDates: [Hours.Day(year: 2026, month: 12, day: 25)]
    )

    @Test("open and closed in the destination's own time zone, whatever the caller's")
    func timeZones() {
        // Wednesday 2026-11-25: 07:59 and 20:00 in Dublin are closed, 08:00 and 19:59 open.
        #expect(!self.dublin.isOpen(at: moment("2026-11-25 07:59", in: "Europe/Dublin")))
        #expect(self.dublin.isOpen(at: moment("2026-11-25 08:00", in: "Europe/Dublin")))
        #expect(self.dublin.isOpen(at: moment("2026-11-25 19:59", in: "Europe/Dublin")))
        #expect(!self.dublin.isOpen(at: moment("2026-11-25 20:00", in: "Europe/Dublin")))
        // 03:30 in New York is 08:30 in Dublin (both on standard time).
        #expect(self.dublin.isOpen(at: moment("2026-11-25 03:30", in: "America/New_York")))
        // Saturday is not listed.
        #expect(!self.dublin.isOpen(at: moment("2026-11-28 12:00", in: "Europe/Dublin")))
    }

    @Test("a closed date closes a listed day, and the next opening skips it")
    func closedDates() {
        #expect(!self.dublin.isOpen(at: moment("2026-12-25 12:00", in: "Europe/Dublin")))  // a Friday
        #expect(self.dublin.isOpen(at: moment("2026-12-24 12:00", in: "Europe/Dublin")))
        // Thursday evening: the next opening is Monday 28th at 08:00, not Christmas Friday.
        let next = self.dublin.nextOpening(after: moment("2026-12-24 21:00", in: "Europe/Dublin"))
        #expect(next == moment("2026-12-28 08:00", in: "Europe/Dublin"))
    }

    @Test("a range past midnight is open until its closing time the next day")
    func overnight() {
        let nights = Hours(
            timeZone: TimeZone(identifier: "Asia/Manila")!,
            ranges: [Hours.Range(days: [5], opens: 22 * 60, closes: 6 * 60)]  // Friday 22:00 to Saturday 06:00
        )
        #expect(!nights.isOpen(at: moment("2026-11-27 21:59", in: "Asia/Manila")))
        #expect(nights.isOpen(at: moment("2026-11-27 23:30", in: "Asia/Manila")))
        #expect(nights.isOpen(at: moment("2026-11-28 00:00", in: "Asia/Manila")))
        #expect(nights.isOpen(at: moment("2026-11-28 05:59", in: "Asia/Manila")))
        #expect(!nights.isOpen(at: moment("2026-11-28 06:00", in: "Asia/Manila")))
        #expect(!nights.isOpen(at: moment("2026-11-27 03:00", in: "Asia/Manila")))  // Friday early: Thursday not listed
        #expect(
            nights.nextOpening(after: moment("2026-11-28 07:00", in: "Asia/Manila"))
                == moment("2026-12-04 22:00", in: "Asia/Manila")
        )
    }
}

@Suite("Route decisions")
struct DecisionTests {
    let now = moment("2026-11-25 12:00", in: "UTC")

    func decide(
        _ destinations: [Destination],
        _ handoff: Handoff = handoff(),
        policy: Policy = Policy(),
        live: [String: LiveState] = [:]
    ) -> Decision {
        RoutingConfiguration(policy: policy, destinations: destinations)
            .decide(handoff, live: { live[$0] ?? LiveState() }, now: self.now)
    }

    func verdict(_ decision: Decision, _ id: String) -> Verdict? {
        decision.verdicts.first { $0.destinationID == id }
    }

    @Test("each hard rule filters, and says why")
    func filters() {
        var policy = Policy()
        policy.categories["payment"] = CategoryRule(requires: ["pci"])
        policy.categories["grief"] = CategoryRule(requiresLiveContext: true)
        let closed = Hours(
            timeZone: TimeZone(identifier: "UTC")!,
            ranges: [Hours.Range(days: [7], opens: 0, closes: 60)]
        )
        let destinations = [
            destination("no-skill", skills: ["general"]),
            destination("no-pci", certifications: []),
            destination("closed", certifications: ["pci"], hours: closed),
            destination("blind", certifications: ["pci"], context: .none),
            destination("good", certifications: ["pci"]),
        ]
        let payment = self.decide(destinations, handoff(category: "payment"), policy: policy)
        #expect(self.verdict(payment, "no-skill")?.text == "lacks skill billing; payment requires certification pci")
        #expect(self.verdict(payment, "no-pci")?.text == "payment requires certification pci")
        #expect(self.verdict(payment, "closed")?.text == "closed now")
        #expect(self.verdict(payment, "good")?.kind == .candidate)
        #expect(payment.chosen == 3)  // "blind" and "good" tie on everything: the earlier in the file wins
        let grief = self.decide(destinations, handoff(category: "grief"), policy: policy)
        #expect(self.verdict(grief, "blind")?.text == "grief requires a live brief, and its desktops cannot show one")
        #expect(grief.chosen == 1)  // no-pci qualifies for grief
    }

    @Test("in-house while its prediction is within the target; the partner exactly when it is not")
    func overflow() {
        // In-house: 1 agent, handle 4 s. With its agent free it predicts 3 s; with it reserved, 3 + 4/1 = 7 s.
        // Target 6.9 s: 7 s is over it, so the partner (free agents, 3 s) takes it. Target 7 s: in-house still.
        let destinations = [
            destination("in-house", agents: 1, handle: 4, cost: 2),
            destination("partner", .partner, agents: 5, cost: 0.5),
        ]
        #expect(self.decide(destinations).chosen == 0)
        let busy = ["in-house": LiveState(held: 1)]
        var policy = Policy()
        policy.maxLiveHumanSeconds = 10
        policy.targetLiveHumanSeconds = 7
        let within = self.decide(destinations, policy: policy, live: busy)
        #expect(within.chosen == 0)
        #expect(within.prediction?.seconds == 7)
        policy.targetLiveHumanSeconds = 6.9
        let over = self.decide(destinations, policy: policy, live: busy)
        #expect(over.chosen == 1)
        #expect(self.verdict(over, "partner")?.text.contains("overflow") == true)
    }

    @Test("urgent goes to the fastest qualified destination, whatever its cost")
    func urgent() {
        let destinations = [
            destination("in-house", agents: 1, handle: 1, cost: 0.1),
            destination("partner", .partner, agents: 5, cost: 9),
        ]
        let live = ["in-house": LiveState(held: 1)]  // in-house predicts 3 + 1 = 4 s, the partner 3 s
        #expect(self.decide(destinations, live: live).chosen == 0)  // in-house is within the 5 s target
        let urgent = self.decide(destinations, handoff(urgent: true), live: live)
        #expect(urgent.chosen == 1)
        #expect(self.verdict(urgent, "partner")?.text.hasPrefix("chosen: urgent") == true)
    }

    @Test("over the maximum is filtered; nobody left is NO_DESTINATION with the next opening")
    func noDestination() {
        let opensAt14 = Hours(
            timeZone: TimeZone(identifier: "UTC")!,
            ranges: [Hours.Range(days: [3], opens: 14 * 60, closes: 18 * 60)]
        )
        let destinations = [
            destination("full", agents: 1, handle: 600),
            destination("later", .partner, hours: opensAt14),
            destination("wrong-skill", skills: ["general"], hours: opensAt14),
        ]
        let decision = self.decide(destinations, live: ["full": LiveState(held: 1)])
        #expect(decision.chosen == nil)
        #expect(self.verdict(decision, "full")?.text == "predicted 603 s, over the 8 s maximum")
        #expect(decision.nextOpening?.destinationID == "later")
        #expect(decision.nextOpening?.at == moment("2026-11-25 14:00", in: "UTC"))
    }

    @Test("fresh availability counts; stale availability falls back to the router's own bookkeeping")
    func staleAvailability() {
        let destinations = [destination("team", agents: 4, handle: 40)]
        let report = Availability(agentsReady: 0, agentsBusy: 4, queueLength: 1, at: self.now.addingTimeInterval(-10))
        let fresh = Prediction(
            destination: destinations[0],
            live: LiveState(availability: report),
            policy: Policy(),
            now: self.now
        )
        #expect(!fresh.stale)
        #expect(fresh.seconds == 3 + 2 * 40 / 4)  // one queued ahead, then this caller
        let old = Availability(agentsReady: 0, agentsBusy: 4, queueLength: 1, at: self.now.addingTimeInterval(-61))
        let stale = Prediction(
            destination: destinations[0],
            live: LiveState(availability: old),
            policy: Policy(),
            now: self.now
        )
        #expect(stale.stale)
        #expect(stale.seconds == 3)  // 4 agents, no reservations of its own
    }
}
