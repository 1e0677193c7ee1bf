import BatonProto

/// The figures in Prometheus' text exposition format, version 0.0.4.
enum Prometheus {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The label value of each failover reason, by raw value.
    static let reasonLabels: [Baton_Metrics_V1_FailoverReason: String] = [
        .undesigned: "undesigned",
        .noBriefBeforeConnect: "no_brief_before_connect",
        .greetedLate: "greeted_late",
        .repeated: "repeated",
        .transferFailed: "transfer_failed",
        .abandoned: "abandoned",
    ]

    static func text(_ figures: FiguresBuilder) -> String {
        var lines: [String] = []
        lines += self.histogram(
            "baton_handoff_time_to_live_human_seconds",
            help: "Time from the gate firing to a live human greeting the caller.",
            buckets: Array(figures.buckets.dropFirst()),
            sumMs: figures.liveHumanSum
        )
        lines += self.histogram(
            "baton_handoff_time_to_context_ready_seconds",
            help: "Time from the gate firing to the brief being on the human's screen.",
            buckets: figures.contextReadyBuckets,
            sumMs: figures.contextReadySum
        )
        lines += [
            "# HELP baton_handoffs_total Handoffs classified, by classification.",
            "# TYPE baton_handoffs_total counter",
            "baton_handoffs_total{classification=\"handoff\"} \(figures.handoffs)",
            "baton_handoffs_total{classification=\"failover\"} \(figures.failovers)",
            "# HELP baton_handoffs_in_progress Handoffs not yet greeted, ended or abandoned.",
            "# TYPE baton_handoffs_in_progress gauge",
            "baton_handoffs_in_progress \(figures.inProgress)",
            "# HELP baton_failovers_total Failovers by reason; a failover counts once under each reason that applies.",
            "# TYPE baton_failovers_total counter",
        ]
        for reason in Baton_Metrics_V1_FailoverReason.allCases {
            if let label = self.reasonLabels[reason] {
                lines.append("baton_failovers_total{reason=\"\(label)\"} \(figures.reasons[reason.rawValue])")
            }
        }
        lines += [
            "# HELP baton_caller_repeats_total Facts callers had to repeat after a handoff.",
            "# TYPE baton_caller_repeats_total counter",
            "baton_caller_repeats_total \(figures.repeats)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A histogram with the bounds 4, 6, 8 and 20 s; `buckets` holds the count within each bound and over the last.
    private static func histogram(_ name: String, help: String, buckets: [UInt64], sumMs: Int64) -> [String] {
        var lines = ["# HELP \(name) \(help)", "# TYPE \(name) histogram"]
        var cumulative: UInt64 = 0
        for (bound, count) in zip(Assessment.bucketBounds.map { "\($0 / 1000)" } + ["+Inf"], buckets) {
            cumulative += count
            lines.append("\(name)_bucket{le=\"\(bound)\"} \(cumulative)")
        }
        lines.append("\(name)_sum \(Double(sumMs) / 1000)")
        lines.append("\(name)_count \(cumulative)")
        return lines
    }
}
