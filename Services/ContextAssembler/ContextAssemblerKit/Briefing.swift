import BatonProto
import Foundation

/// Builds briefs from a call's state, and the two texts spoken from them.
enum Briefing {
    /// A brief of `state` for the gate described by `head` (a brief whose gate, destination, times and token are
    /// set); facts, caller, turns and the rest come from the state. `trigger` is the event that fired the gate.
    static func brief(
        _ head: Baton_Context_V1_Brief,
        of state: CallState,
        trigger: String
    ) -> Baton_Context_V1_Brief {
        var brief = head
        brief.callID = state.call.callID
        brief.workflowID = state.call.workflowID
        brief.callerName = state.slots["identity.name"]?.value ?? ""
        brief.verified = !state.verificationMethod.isEmpty
        brief.verificationMethod = state.verificationMethod
        brief.phoneMasked = Self.mask(state.call.caller.phoneNumber)
        brief.language = state.call.caller.language
        brief.intents = state.intents
        brief.currentStep = state.currentStep
        brief.proposedNextStep = state.proposedNextStep
        brief.aiSummary = state.summary
        var facts: [Baton_Context_V1_Fact] = []
        var missing: [String] = []
        for slot in head.briefLead {
            if var fact = state.slots[slot] {
                fact.lead = true
                facts.append(fact)
            } else {
                missing.append(slot)
            }
        }
        for slot in state.slotOrder where !head.briefLead.contains(slot) {
            if let fact = state.slots[slot] {
                facts.append(fact)
            }
        }
        brief.facts = facts
        brief.missing = missing
        brief.keyTurns = state.recentTurns.map { turn in
            var turn = turn
            turn.trigger = turn.eventID == trigger
            return turn
        }
        if !brief.keyTurns.contains(where: \.trigger),
            let kept = head.keyTurns.first(where: \.trigger)
        {
            brief.keyTurns.insert(kept, at: 0)
        }
        return brief
    }

    /// What changed from `old` to `new`, in the names a desk highlights: `facts.<slot>`, `verified`, `intents`,
    /// `current_step`, `proposed_next_step`, `ai_summary`, `destination`.
    static func changes(from old: Baton_Context_V1_Brief, to new: Baton_Context_V1_Brief) -> [String] {
        var changed: [String] = []
        let before = Dictionary(old.facts.map { ($0.slot, $0) }, uniquingKeysWith: { first, _ in first })
        for fact in new.facts where before[fact.slot] != fact {
            changed.append("facts.\(fact.slot)")
        }
        if old.verified != new.verified || old.verificationMethod != new.verificationMethod {
            changed.append("verified")
        }
        if old.callerName != new.callerName { changed.append("caller_name") }
        if old.intents != new.intents { changed.append("intents") }
        if old.currentStep != new.currentStep { changed.append("current_step") }
        if old.proposedNextStep != new.proposedNextStep { changed.append("proposed_next_step") }
        if old.aiSummary != new.aiSummary { changed.append("ai_summary") }
        if old.destinationID != new.destinationID { changed.append("destination") }
        return changed
    }

    /// "+353 ••• ••• 567": the country code and the last three digits.
    static func mask(_ phone: String) -> String {
        let digits = phone.filter(\.isASCIIDigit)
        guard digits.count > 5 else {
            return digits.isEmpty ? "" : "•••"
        }
        let country = phone.hasPrefix("+") ? "+" + digits.prefix(digits.count > 10 ? digits.count - 9 : 1) + " " : ""
        return country + "••• ••• " + digits.suffix(3)
    }

    /// A slot as a caller hears it named: "your account", "the refund amount".
    static func spoken(_ slot: String) -> String {
        switch slot {
        case "identity.name": return "your name"
        case "account.id": return "your account"
        case "card.last4": return "the card you're using"
        default:
            let words = slot.split(whereSeparator: { $0 == "." || $0 == "_" }).joined(separator: " ")
            return "the \(words)"
        }
    }

    /// An intent as a caller hears it: "make_payment" becomes "the make payment request".
    static func spokenIntent(_ intent: String) -> String {
        switch intent {
        case "make_payment": "the payment you want to make"
        case "update_card": "the card you want to update"
        case "request_refund": "the refund you asked for"
        case "cancel_contract": "why you want to cancel"
        default: "what you asked about"
        }
    }

    /// What the AI says to the caller now.
    static func callerText(_ plan: Baton_Context_V1_Plan) -> String {
        let brief = plan.brief
        if plan.outcome == .noDestination {
            if plan.callbackOffered {
                let minutes = max(1, (plan.nextOpenAtUnixMs - brief.firedAtUnixMs) / 60_000)
                return "Everyone who can help with this is busy right now. I can arrange for a colleague to call you "
                    + "back in about \(minutes) minute\(minutes == 1 ? "" : "s"), with everything you've told me. "
                    + "Would that work?"
            }
            return "I'm sorry, nobody who can help with this is available right now. I've noted everything you've "
                + "told me so that you won't need to repeat it."
        }
        var seen = brief.facts.filter(\.lead).map { Self.spoken($0.slot) }
        if let intent = brief.intents.last {
            seen.append(Self.spokenIntent(intent))
        }
        let team = plan.destinationKind == .partner ? "our partner team" : "our \(brief.category) team"
        let what = Self.list(seen.isEmpty ? ["what we've talked about"] : seen)
        let seconds = max(1, Int((Double(plan.predictedLiveHumanMs) / 1000).rounded()))
        return "I'm bringing in a colleague from \(team) who can already see \(what); "
            + "they'll be with you in about \(seconds) second\(seconds == 1 ? "" : "s")."
    }

    /// A one-breath introduction for the human.
    static func whisper(_ brief: Baton_Context_V1_Brief) -> String {
        var parts: [String] = []
        let name = brief.callerName.isEmpty ? "Caller" : brief.callerName
        parts.append(brief.verified ? "\(name), verified by \(brief.verificationMethod)" : "\(name), not verified")
        if let account = brief.facts.first(where: { $0.slot == "account.id" }) {
            parts.append("account \(account.value)")
        }
        var text = parts.joined(separator: ", ")
        if let intent = brief.intents.last {
            text += ": \(intent.replacingOccurrences(of: "_", with: " "))"
        }
        if !brief.missing.isEmpty {
            text += "; ask for \(brief.missing.joined(separator: ", "))"
        }
        return text + "."
    }

    static func list(_ items: [String]) -> String {
        switch items.count {
        case 0: ""
        case 1: items[0]
        default: items.dropLast().joined(separator: ", ") + " and " + items[items.count - 1]
        }
    }
}
