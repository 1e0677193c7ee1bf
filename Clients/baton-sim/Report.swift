import BatonProto
import Foundation

/// One mode's figures: the calls as the simulator saw them, and each handoff as Baton's metrics collector holds it.
struct Report {
    let mode: Mode
    let outcomes: [CallOutcome]
    let handoffs: [String: Baton_Metrics_V1_Handoff]
    let took: Duration
    /// What the run left in Baton (every acknowledged event kept, nothing twice).
    let audit: Audit
    /// With --chaos: the processes killed, in order.
    let kills: [String]

    /// Each handoff's time to live human as the collector holds it (ms), of those that reached a human.
    var liveTimes: [Double] {
        self.reached.compactMap { $0.handoff.hasTimeToLiveHumanMs ? Double($0.handoff.timeToLiveHumanMs) : nil }
    }

    /// Why Baton's collector classified the handoffs as failovers, most frequent first.
    var failoverReasons: [(String, Int)] {
        var reasons: [String: Int] = [:]
        for outcome in self.outcomes where !outcome.handoffID.isEmpty {
            guard let handoff = self.handoffs[outcome.handoffID], handoff.classification == .failover else {
                continue
            }
            for reason in handoff.reasons {
                reasons[Self.reasonName(reason.reason), default: 0] += 1
            }
        }
        return reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    /// The handoffs that reached a human, as the collector holds them.
    var reached: [(outcome: CallOutcome, handoff: Baton_Metrics_V1_Handoff)] {
        self.outcomes.compactMap { outcome in
            guard outcome.end == .human, let handoff = self.handoffs[outcome.handoffID] else {
                return nil
            }
            return (outcome, handoff)
        }
    }

    /// The figures, by name, in the order the table prints them.
    var figures: [(String, String)] {
        let calls = self.outcomes.count
        let withHandoff = self.outcomes.filter { !$0.handoffID.isEmpty }
        let reached = self.reached
        let designed = withHandoff.filter(\.designed).count
        let live = self.liveTimes
        let ready = reached.compactMap {
            $0.handoff.hasTimeToContextReadyMs ? Double($0.handoff.timeToContextReadyMs) : nil
        }
        let platform = withHandoff.compactMap(\.platformMs)
        let briefFirst = reached.filter { Self.briefBeforeHello($0.handoff) }.count
        let repeats = reached.reduce(0) { $0 + Int($1.handoff.repeats) }
        let anyRepeat = reached.filter { $0.handoff.repeats > 0 }.count
        let errors = reached.compactMap { pair -> Double? in
            guard pair.handoff.hasTimeToLiveHumanMs, pair.outcome.predictedMs > 0 else {
                return nil
            }
            return abs(Double(pair.handoff.timeToLiveHumanMs) - Double(pair.outcome.predictedMs))
        }
        let (precision, recall) = self.detection
        let classified = withHandoff.compactMap { self.handoffs[$0.handoffID] }
        let asHandoff = classified.filter { $0.classification == .handoff }.count
        let topReasons = self.failoverReasons.prefix(3).map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let buckets: [(String, (Double) -> Bool)] = [
            ("under 4 s", { $0 < 4_000 }), ("4-6 s", { $0 >= 4_000 && $0 < 6_000 }),
            ("6-8 s", { $0 >= 6_000 && $0 < 8_000 }), ("8-20 s", { $0 >= 8_000 && $0 < 20_000 }),
            ("over 20 s", { $0 >= 20_000 }),
        ]
        var rows: [(String, String)] = [
            ("calls", "\(calls)"),
            ("resolved by the AI", "\(self.count(.resolvedByAI))"),
            ("handoffs", "\(withHandoff.count)"),
            ("designed", Self.share(designed, of: withHandoff.count)),
            ("reached a human", "\(reached.count)"),
            ("brief on screen before hello", Self.share(briefFirst, of: reached.count)),
            (
                "repeats per handoff",
                reached.isEmpty ? "-" : String(format: "%.2f", Double(repeats) / Double(reached.count))
            ),
            ("handoffs with a repeat", Self.share(anyRepeat, of: reached.count)),
            ("time to live human p50", Self.seconds(Self.percentile(live, 50))),
            ("time to live human p90", Self.seconds(Self.percentile(live, 90))),
            ("time to live human p99", Self.seconds(Self.percentile(live, 99))),
        ]
        for (name, test) in buckets {
            rows.append(("  " + name, Self.share(live.filter(test).count, of: live.count)))
        }
        rows += [
            ("time to context ready p50", Self.milliseconds(Self.percentile(ready, 50))),
            ("time to context ready p99", Self.milliseconds(Self.percentile(ready, 99))),
            ("  platform's share p50", Self.decimal(Self.percentile(platform, 50))),
            ("  platform's share p99", Self.decimal(Self.percentile(platform, 99))),
            (
                "prediction error mean",
                errors.isEmpty ? "-" : Self.seconds(errors.reduce(0, +) / Double(errors.count))
            ),
            ("prediction error p90", Self.seconds(Self.percentile(errors, 90))),
            (
                "answered in house / partner",
                "\(reached.filter { $0.outcome.destinationKind == "in_house" }.count) / "
                    + "\(reached.filter { $0.outcome.destinationKind == "partner" }.count)"
            ),
            ("humans' cost", String(format: "%.2f", reached.reduce(0) { $0 + $1.outcome.cost })),
            ("transfers failed (SIP 503)", "\(self.outcomes.reduce(0) { $0 + $1.failedTransfers })"),
            ("callback offered", "\(self.count(.callback))"),
            ("hung up on hold", "\(self.count(.abandoned))"),
            ("failed", "\(self.count(.failed))"),
            ("Baton: handoff / failover", "\(asHandoff) / \(classified.count - asHandoff)"),
            ("top failover reasons", topReasons.isEmpty ? "-" : topReasons),
            ("repeat detection precision", precision.map { String(format: "%.2f", $0) } ?? "-"),
            ("repeat detection recall", recall.map { String(format: "%.2f", $0) } ?? "-"),
            ("took", String(format: "%.0f s", Simulation.milliseconds(self.took) / 1000)),
        ]
        if !self.kills.isEmpty {
            rows.append(("chaos: processes killed", "\(self.kills.count)"))
            for (name, kills) in Dictionary(grouping: self.kills, by: { $0 }).sorted(by: { $0.key < $1.key }) {
                rows.append(("  " + name, "\(kills.count)"))
            }
        }
        rows.append(("check: after the run", ""))
        rows += self.audit.lines.map { ("  " + $0.0, $0.1) }
        return rows
    }

    private func count(_ end: CallOutcome.End) -> Int {
        self.outcomes.filter { $0.end == end }.count
    }

    /// Baton's detected repeats against the simulator's ground truth, slot by slot: (precision, recall). Only
    /// over the handoffs Baton saw reach a human: a blind transfer it refused to hear of (failover mode, where its
    /// router found no destination) is one where it could not listen for repeats.
    var detection: (Double?, Double?) {
        var truePositives = 0
        var detected = 0
        var actual = 0
        for (outcome, handoff) in self.reached where Self.first(.humanGreeted, in: handoff) != nil {
            let truth = Set(outcome.repeated)
            let found = Set(handoff.repeatedSlots)
            truePositives += truth.intersection(found).count
            detected += found.count
            actual += truth.count
        }
        return (
            detected == 0 ? nil : Double(truePositives) / Double(detected),
            actual == 0 ? nil : Double(truePositives) / Double(actual)
        )
    }

    /// The brief was on screen (brief_displayed) before the human said hello (human_greeted).
    static func briefBeforeHello(_ handoff: Baton_Metrics_V1_Handoff) -> Bool {
        guard let displayed = Self.first(.briefDisplayed, in: handoff),
            let greeted = Self.first(.humanGreeted, in: handoff)
        else {
            return false
        }
        return displayed <= greeted
    }

    static func first(_ kind: Baton_Metrics_V1_EventKind, in handoff: Baton_Metrics_V1_Handoff) -> Int64? {
        handoff.timeline.filter { $0.kind == kind }.map(\.atUnixMs).min()
    }

    static func reasonName(_ reason: Baton_Metrics_V1_FailoverReason) -> String {
        String(describing: reason).replacingOccurrences(
            of: "([a-z])([A-Z])",
            with: "$1 $2",
            options: .regularExpression
        )
        .lowercased()
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else {
            return nil
        }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    static func share(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "-" : String(format: "%.0f%%", Double(part) * 100 / Double(whole))
    }

    static func seconds(_ ms: Double?) -> String {
        ms.map { String(format: "%.1f s", $0 / 1000) } ?? "-"
    }

    static func milliseconds(_ ms: Double?) -> String {
        ms.map { String(format: "%.0f ms", $0) } ?? "-"
    }

    static func decimal(_ ms: Double?) -> String {
        ms.map { String(format: "%.1f ms", $0) } ?? "-"
    }

    /// The modes side by side.
    static func table(_ reports: [Report]) -> String {
        let names = reports.first?.figures.map(\.0) ?? []
        let columns = reports.map { $0.figures.map(\.1) }
        let nameWidth = max(28, (names.map(\.count).max() ?? 0) + 2)
        let widths = reports.indices.map { index in
            max(12, ([reports[index].mode.rawValue] + columns[index]).map(\.count).max() ?? 0) + 2
        }
        func line(_ name: String, _ cells: [String]) -> String {
            name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + zip(cells, widths).map { cell, width in
                    String(repeating: " ", count: max(0, width - cell.count)) + cell
                }.joined()
        }
        var lines = [line("", reports.map(\.mode.rawValue))]
        for (row, name) in names.enumerated() {
            lines.append(line(name, columns.map { $0[row] }))
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ reports: [Report], memory: [(String, Double)] = []) -> String {
        var object: [String: [String: String]] = [:]
        if !memory.isEmpty {
            object["peak_rss_mib"] = Dictionary(
                memory.map { ($0.0, String(format: "%.1f", $0.1)) },
                uniquingKeysWith: { first, _ in first }
            )
        }
        for report in reports {
            object[report.mode.rawValue] = Dictionary(
                report.figures.map { ($0.0.trimmingCharacters(in: .whitespaces), $0.1) },
                uniquingKeysWith: { first, _ in first }
            )
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
