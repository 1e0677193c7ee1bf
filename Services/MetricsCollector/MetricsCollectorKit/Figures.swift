import BatonProto
import Histogram

/// The figures of a set of handoffs, accumulated one assessed handoff at a time.
struct FiguresBuilder {
    private(set) var total: UInt64 = 0
    private(set) var handoffs: UInt64 = 0
    private(set) var failovers: UInt64 = 0
    private(set) var inProgress: UInt64 = 0
    private(set) var repeats: UInt64 = 0
    /// Time-to-context-ready and time-to-live-human, in ms.
    private(set) var contextReady = Self.histogram()
    private(set) var liveHuman = Self.histogram()
    /// Sums of the recorded times, ms, for Prometheus' `_sum`.
    private(set) var contextReadySum: Int64 = 0
    private(set) var liveHumanSum: Int64 = 0
    /// Time-to-live-human counts by `Bucket` raw value (0: not greeted).
    private(set) var buckets = [UInt64](repeating: 0, count: Baton_Metrics_V1_Bucket.tableSize)
    /// Time-to-context-ready counts by the same bounds (index 0: under 4 s, the last: over 20 s).
    private(set) var contextReadyBuckets = [UInt64](repeating: 0, count: Baton_Metrics_V1_Bucket.tableSize - 1)
    /// Counts by `FailoverReason` raw value.
    private(set) var reasons = [UInt64](repeating: 0, count: Baton_Metrics_V1_FailoverReason.tableSize)

    /// The longest of each time, exact.
    private(set) var contextReadyMax: Int64 = 0
    private(set) var liveHumanMax: Int64 = 0

    /// Times over an hour are recorded as an hour: a caller kept that long is lost whatever the exact figure (the
    /// maximum is kept exactly beside). The smaller the range, the smaller each histogram, and a Summary grouped
    /// many ways makes two per group.
    static let highestMs: UInt64 = 3_600_000

    /// Three significant digits: a percentile is within 0.1% of the exact value.
    static func histogram() -> Histogram<UInt64> {
        Histogram(
            lowestDiscernibleValue: 1,
            highestTrackableValue: Self.highestMs,
            numberOfSignificantValueDigits: .three
        )
    }

    mutating func add(_ assessment: Assessment) {
        self.total += 1
        switch assessment.classification {
        case .handoff: self.handoffs += 1
        case .failover: self.failovers += 1
        default: self.inProgress += 1
        }
        self.repeats += UInt64(assessment.repeats)
        if let time = assessment.timeToContextReadyMs {
            self.contextReady.record(min(UInt64(time), Self.highestMs))
            self.contextReadySum += time
            self.contextReadyMax = max(self.contextReadyMax, time)
            self.contextReadyBuckets[Assessment.bucket(time).rawValue - 1] += 1
        }
        if let time = assessment.timeToLiveHumanMs {
            self.liveHuman.record(min(UInt64(time), Self.highestMs))
            self.liveHumanSum += time
            self.liveHumanMax = max(self.liveHumanMax, time)
        }
        self.buckets[assessment.bucket.rawValue] += 1
        // In progress, the reasons so far are not yet a failover's.
        if assessment.classification == .failover {
            for reason in assessment.reasons {
                self.reasons[reason.rawValue] += 1
            }
        }
    }

    var message: Baton_Metrics_V1_Figures {
        var figures = Baton_Metrics_V1_Figures()
        figures.handoffsTotal = self.total
        figures.handoffs = self.handoffs
        figures.failovers = self.failovers
        figures.inProgress = self.inProgress
        figures.timeToContextReady = Self.percentiles(self.contextReady, max: self.contextReadyMax)
        figures.timeToLiveHuman = Self.percentiles(self.liveHuman, max: self.liveHumanMax)
        figures.repeats = self.repeats
        figures.repeatsPerHandoff = self.total == 0 ? 0 : Double(self.repeats) / Double(self.total)
        figures.buckets.notGreeted = self.buckets[0]
        figures.buckets.under4S = self.buckets[1]
        figures.buckets.from4To6S = self.buckets[2]
        figures.buckets.from6To8S = self.buckets[3]
        figures.buckets.from8To20S = self.buckets[4]
        figures.buckets.over20S = self.buckets[5]
        figures.topFailoverReasons = self.reasons.enumerated()
            .filter { $0.element > 0 }
            .sorted { ($0.element, $1.offset) > ($1.element, $0.offset) }
            .map { reason, count in
                var counted = Baton_Metrics_V1_ReasonCount()
                counted.reason = .init(rawValue: reason) ?? .unspecified
                counted.count = count
                return counted
            }
        return figures
    }

    /// The 50th, 90th and 99th percentiles in one pass over the recorded values, as `valueAtPercentile` gives each
    /// (the top of the equivalent range of the value at that rank, at most the largest recorded), and `max`.
    static func percentiles(_ histogram: Histogram<UInt64>, max: Int64) -> Baton_Metrics_V1_Percentiles {
        var percentiles = Baton_Metrics_V1_Percentiles()
        let total = histogram.totalCount
        percentiles.count = total
        guard total > 0 else {
            return percentiles
        }
        // valueAtPercentile's rank: a hair under the percentile, rounded up, at least the first value.
        let ranks = [50.0, 90, 99].map { Swift.max(1, UInt64(($0.nextDown * Double(total) / 100).rounded(.up))) }
        var values: [UInt64] = []
        var cumulative: UInt64 = 0
        for recorded in histogram.recordedValues() where values.count < ranks.count {
            cumulative += recorded.count
            while values.count < ranks.count && cumulative >= ranks[values.count] {
                values.append(Swift.min(histogram.highestEquivalentForValue(recorded.value), histogram.maxRecorded))
            }
        }
        percentiles.p50Ms = UInt32(clamping: values[0])
        percentiles.p90Ms = UInt32(clamping: values[1])
        percentiles.p99Ms = UInt32(clamping: values[2])
        percentiles.maxMs = UInt32(clamping: max)
        return percentiles
    }
}

extension CaseIterable where Self: RawRepresentable, Self.RawValue == Int {
    /// The size of a table with one slot per case, indexed by raw value: derived from the generated enum, so that
    /// a case added to the proto gets its slot.
    static var tableSize: Int {
        (Self.allCases.map(\.rawValue).max() ?? 0) + 1
    }
}
