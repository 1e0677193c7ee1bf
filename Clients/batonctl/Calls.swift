import ArgumentParser
import BatonProto
import Foundation
import SwiftProtobuf

struct Calls: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The open calls and their handoffs in progress (the context-assembler's ListCalls)."
    )

    @OptionGroup var connection: Connection
    @Flag(help: "Print them as JSON (baton.context.v1.ListCallsReply).") var json = false

    func run() async throws {
        let reply = try await self.connection.call(
            "context-assembler",
            Baton_Context_V1_ContextAssembler.Method.listCalls,
            Baton_Context_V1_ListCallsRequest()
        )
        if self.json {
            Output.line(try reply.jsonString())
            return
        }
        guard !reply.calls.isEmpty else {
            Output.line("No open calls.")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        Output.table(
            ["CALL", "WORKFLOW", "OPEN FOR", "HANDOFF", "STATE", "DESTINATION", "SINCE GATE"],
            reply.calls.map { call in
                let handoff = call.handoffs.last
                return [
                    call.callID, call.workflowID, Output.duration(milliseconds: now - call.startedAtUnixMs),
                    handoff?.handoffID ?? "-", handoff.map { Self.state($0.state) } ?? "-",
                    handoff.map { $0.plan.destinationID.isEmpty ? "-" : $0.plan.destinationID } ?? "-",
                    handoff.map { Output.duration(milliseconds: now - $0.plan.brief.firedAtUnixMs) } ?? "-",
                ]
            }
        )
    }

    static func state(_ state: Baton_Context_V1_Handoff.State) -> String {
        switch state {
        case .offered: "offered"
        case .accepted: "accepted"
        case .connected: "connected"
        case .greeted: "greeted"
        case .handedBack: "handed back"
        case .noDestination: "no destination"
        case .ended: "ended"
        default: "unknown"
        }
    }
}

struct BriefCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brief",
        abstract: "A handoff's brief as the human reads it (the context-assembler's GetBrief)."
    )

    @OptionGroup var connection: Connection
    @Argument(help: "The handoff id (or, with --token, the X-Baton-Handoff token).") var handoff: String
    @Flag(help: "The argument is the token of the X-Baton-Handoff SIP header.") var token = false
    @Flag(help: "Print it as JSON (baton.context.v1.Brief).") var json = false

    func run() async throws {
        var request = Baton_Context_V1_GetBriefRequest()
        if self.token {
            request.token = self.handoff
        } else {
            request.handoffID = self.handoff
        }
        let brief = try await self.connection.call(
            "context-assembler",
            Baton_Context_V1_ContextAssembler.Method.getBrief,
            request
        )
        if self.json {
            Output.line(try brief.jsonString())
            return
        }
        Output.line(Self.text(brief))
    }

    /// The brief in the order a human reads it: the lead facts first, then what to ask for, then the rest.
    static func text(_ brief: Baton_Context_V1_Brief) -> String {
        var lines: [String] = []
        let kind = brief.undesigned ? "undesigned escalation" : "gate \(brief.gateID)"
        lines.append("\(brief.handoffID), revision \(brief.revision): \(brief.category), \(kind), \(brief.priority)")
        lines.append("  why: \(brief.why)")
        let name = brief.callerName.isEmpty ? "caller (name not captured)" : brief.callerName
        let verified = brief.verified ? "verified by \(brief.verificationMethod)" : "NOT verified"
        lines.append("  \(name), \(verified), \(brief.phoneMasked), \(brief.language)")
        for fact in brief.facts where fact.lead {
            lines.append("  \(fact.slot): \(fact.value)\(fact.confirmed ? " (confirmed)" : "")")
        }
        for slot in brief.missing {
            lines.append("  \(slot): ask for it")
        }
        if !brief.intents.isEmpty {
            lines.append("  wants: \(brief.intents.joined(separator: ", "))")
        }
        if !brief.proposedNextStep.isEmpty {
            lines.append("  next step: \(brief.proposedNextStep)")
        }
        let others = brief.facts.filter { !$0.lead }
        if !others.isEmpty {
            lines.append("  also known:")
            for fact in others {
                let notes = [fact.confirmed ? "confirmed" : nil, fact.declared ? nil : "undeclared"].compactMap { $0 }
                lines.append(
                    "    \(fact.slot): \(fact.value)\(notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))")"
                )
            }
        }
        if !brief.aiSummary.isEmpty {
            lines.append("  AI summary: \(brief.aiSummary)")
        }
        if !brief.keyTurns.isEmpty {
            lines.append("  key turns:")
            for turn in brief.keyTurns {
                let speaker = turn.speaker == .caller ? "caller" : "AI"
                lines.append("    \(turn.trigger ? "*" : " ") \(speaker): \(turn.text)")
            }
        }
        let predicted = String(format: "%.1f", Double(brief.predictedLiveHumanMs) / 1000)
        lines.append("  to \(brief.destinationID), live human predicted in \(predicted) s")
        if !brief.changed.isEmpty {
            lines.append("  changed in this revision: \(brief.changed.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}
