import BatonProto
import BatonRPC
import BatonRuntime
import BatonStore
import BatonTestKit
import Foundation
import GRDB
import Histogram
import Logging
import SwiftProtobuf
import Synchronization
import Testing

@testable import MetricsCollectorKit

/// MetricsCores on real SQLite files in one temporary directory, on a clock the test sets.
final class Collectors: Sendable {
    let directory: TemporaryDirectory
    private let time = Mutex(Events.t0 + 3_600_000)

    init() throws {
        self.directory = try TemporaryDirectory()
    }

    var now: Int64 { self.time.withLock { $0 } }

    func open(
        _ name: String = "metrics",
        judging: Judging = Judging(),
        retention: Duration? = nil
    ) async throws -> MetricsCore {
        var logger = Logger(label: "metrics-test")
        logger.logLevel = .critical
        return try await MetricsCore.open(
            database: self.directory.appending("\(name).sqlite"),
            judging: judging,
            retention: retention,
            logger: logger,
            now: { self.now }
        )
    }

    /// The core on the same file, its history not read yet: the test starts the read.
    func unloaded(_ name: String = "metrics") throws -> MetricsCore {
        var logger = Logger(label: "metrics-test")
        logger.logLevel = .critical
        return try MetricsCore(
            database: self.directory.appending("\(name).sqlite"),
            logger: logger,
            now: { self.now }
        )
    }

    func remove() {
        self.directory.remove()
    }
}

@Suite("Metrics core")
struct MetricsCoreTests {
    static let everyGroup: [Baton_Metrics_V1_GroupBy] = [.workflow, .gate, .category, .destination, .destinationKind]

    @Test("a timeline absorbed from two parts of its events is the one merged from all of them, wherever they split")
    func absorbEqualsMerge() {
        var events = Events.designed()
        events.add(.callerRepeated, at: 6_000) { $0.repeatedSlot = "postcode" }
        events.add(.callerRepeated, at: 7_000) { $0.repeatedSlot = "name" }
        let whole = events.timeline
        let now = Events.t0 + 3_600_000
        for split in 0...events.events.count {
            // The later events folded first, as a history loaded behind live events would be.
            var live = Timeline()
            var history = Timeline()
            for (index, event) in events.events.enumerated() {
                if index < split {
                    history.merge(event)
                } else {
                    live.merge(event)
                }
            }
            live.absorb(history)
            #expect(Assessment(live, now: now, judging: Judging()) == Assessment(whole, now: now, judging: Judging()))
            #expect(
                live.repeatedSlots == whole.repeatedSlots && live.events == whole.events && live.start == whole.start
            )
            #expect(Timeline.Key.allCases.allSatisfy { live[$0] == whole[$0] })
        }
    }

    @Test("handoffs that started before the retention window are never counted, and are pruned from the store for good")
    func retention() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let day: Int64 = 86_400_000
        var old = Events(handoffID: "old")
        old.add(.gateFired, at: -2 * day) { $0.origin = .designed }
        old.add(.humanGreeted, at: -2 * day + 4_000)
        var recent = Events.designed("recent")
        let core = try await collectors.open(retention: .seconds(86_400))
        _ = try await core.record(old.events + recent.events)
        recent.add(.callerRepeated, at: 8_000) { $0.repeatedSlot = "account" }
        let all = Baton_Metrics_V1_SummaryRequest()
        let before = try await core.summary(all)
        #expect(before.overall.handoffsTotal == 1, "the old handoff is outside the window before it is pruned too")
        #expect(try await core.prune() == 1)
        let stored = try await core.store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE handoff_id = 'old'")
        }
        #expect(stored == 0, "pruned durably")
        #expect(try await core.prune() == 0)
        let reopened = try await collectors.open(retention: .seconds(86_400))
        #expect(try await reopened.summary(all).overall == before.overall, "the same figures after a restart")
        await #expect(throws: RPCError.self) { try await reopened.handoff("old") }
    }

    @Test("events recorded while the history loads are counted once, with the history")
    func recordWhileLoading() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let events = Events.designed()
        let first = try await collectors.open()
        _ = try await first.record(Array(events.events.prefix(5)))
        let core = try collectors.unloaded()
        try await core.beginLoading()
        // Recorded at once, whether or not the history is in memory yet; a repeat of a stored event is a duplicate.
        let reply = try await core.record(Array(events.events.dropFirst(4)))
        #expect(reply.recorded == 4 && reply.duplicates == 1)
        let handoff = try await core.handoff("h-1")
        #expect(handoff.events == 9 && handoff.classification == .handoff)
    }

    @Test(
        "a restart answers a window of recent handoffs while older history is still being read, and never a partial one"
    )
    func recentWindowFirst() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let day: Int64 = 86_400_000
        // Newest first, as the history is read: "new" (in the last hour), "mid" and "old".
        let handoffs = [("new", Int64(0)), ("mid", -day), ("old", -2 * day)].map { id, offset in
            var events = Events(handoffID: id)
            events.add(.gateFired, at: offset) { $0.origin = .designed }
            events.add(.humanGreeted, at: offset + 4_000)
            return events.events
        }
        let first = try await collectors.open()
        _ = try await first.record(handoffs.flatMap { $0 })

        let core = try collectors.unloaded()
        // The read stops after each batch (one handoff each) until the test lets it go on. After the second,
        // "new" and "mid" are in memory: every handoff whose latest event is in the last hour is.
        let paused = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
        try await core.beginLoading(batch: 1) {
            paused.signal()
            resume.wait()
        }
        let pause = {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    paused.wait()
                    continuation.resume()
                }
            }
        }
        await pause()
        resume.signal()
        await pause()
        var hour = Baton_Metrics_V1_SummaryRequest()
        hour.windowS = 3_600
        #expect(try await core.summary(hour).overall.handoffsTotal == 1, "the last hour, answered during the read")
        #expect(!core.loaded.complete)

        // A new event of "old", recorded while its history is unread, would make it look as if it started now.
        var late = Events(handoffID: "old")
        late.add(.callerRepeated, at: 10_000) { $0.repeatedSlot = "account" }
        late.events[0].eventID = "old-late"
        _ = try await core.record(late.events)
        let hourAgain = Task { try await core.summary(hour) }
        #expect(await eventually { core.loaded.waiting == 1 }, "the last hour now waits for old's history")
        resume.signal()
        let recent = try await hourAgain.value
        #expect(recent.overall.handoffsTotal == 1, "and does not count old, which started two days ago")
        let all = try await core.summary(Baton_Metrics_V1_SummaryRequest())
        #expect(all.overall.handoffsTotal == 3)
        #expect(all.overall.repeats == 1)
        #expect(core.loaded.complete)
    }

    @Test("a database from before the handoffs table is migrated: its history is read and counted")
    func migratesHistory() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let path = collectors.directory.appending("metrics.sqlite")
        let events = Events.designed().events
        // The first version's schema and rows, as an older collector left them.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        handoff_id TEXT NOT NULL, event_id TEXT NOT NULL, kind INTEGER NOT NULL, at_ms INTEGER NOT NULL,
                        received_ms INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (handoff_id, event_id)
                    ) WITHOUT ROWID;
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1');
                    """
            )
            for event in events {
                var body = event
                body.handoffID = ""
                body.eventID = ""
                try db.execute(
                    sql: "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        event.handoffID, event.eventID, event.kind.rawValue, event.atUnixMs, event.atUnixMs,
                        try body.serializedBytes() as Data,
                    ]
                )
            }
        }
        try queue.close()
        let core = try await collectors.open()
        let summary = try await core.summary(Baton_Metrics_V1_SummaryRequest())
        #expect(summary.overall.handoffsTotal == 1 && summary.overall.handoffs == 1)
        let latest = try await core.store.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT last_at_ms FROM handoffs WHERE handoff_id = 'h-1'")
        }
        #expect(latest == events.map(\.atUnixMs).max())
    }

    @Test("a repeated event id is acknowledged and not counted twice, within a batch and across calls")
    func duplicates() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let core = try await collectors.open()
        var events = Events.designed()
        events.add(.callerRepeated, at: 6_000) { $0.repeatedSlot = "postcode" }
        let first = try await core.record(events.events + [events.events[9]])
        #expect(first.recorded == 10 && first.duplicates == 1)
        let again = try await core.record([events.events[9], events.events[0]])
        #expect(again.recorded == 0 && again.duplicates == 2)
        let handoff = try await core.handoff("h-1")
        #expect(handoff.repeats == 1 && handoff.events == 10 && handoff.timeline.count == 10)
        // The same event id in another handoff is another event.
        var other = events.events[9]
        other.handoffID = "h-2"
        #expect(try await core.record([other]).recorded == 1)
    }

    /// A random handoff: any of the events may be missing, times and attributes vary, and some repeat facts.
    static func randomHandoff(_ index: Int, using random: inout SplitMix64) -> [Baton_Metrics_V1_Event] {
        var events = Events(handoffID: "h-\(index)")
        let start = Int64.random(in: 0...3_000_000, using: &random)
        let origins: [Baton_Metrics_V1_Origin] = [.designed, .undesigned, .unspecified]
        let origin = origins.randomElement(using: &random)!
        let gate = ["payment", "grief", ""].randomElement(using: &random)!
        var offset: Int64 = 0
        for kind in Baton_Metrics_V1_EventKind.allCases where kind != .unspecified {
            offset += Int64.random(in: 0...4_000, using: &random)
            guard Int.random(in: 0..<10, using: &random) < 8 else {
                continue
            }
            // Some kinds come twice (a second transfer, a greeting sent by two systems), at other times.
            let count = Int.random(in: kind == .callerRepeated ? 0...2 : 1...2, using: &random)
            for _ in 0..<count {
                events.add(kind, at: start + offset) { event in
                    event.workflow = kind == .gateFired ? "billing" : ""
                    event.gate = kind == .gateFired ? gate : ""
                    event.origin = kind == .gateFired ? origin : .unspecified
                    event.destination = kind == .routed ? "d-\(index % 3)" : ""
                    event.destinationKind = kind == .routed ? (index % 2 == 0 ? "in_house" : "partner") : ""
                    event.repeatedSlot = kind == .callerRepeated ? "slot-\(offset % 5)" : ""
                }
                // Some events share a millisecond with the one before.
                offset += [0, 1, 2_500].randomElement(using: &random)!
            }
        }
        return events.events
    }

    struct Figures: Equatable {
        var summary: Baton_Metrics_V1_SummaryReply
        var list: Baton_Metrics_V1_ListHandoffsReply
        var handoffs: [Baton_Metrics_V1_Handoff]
    }

    static func figures(_ core: MetricsCore, ids: [String]) async throws -> Figures {
        var summary = Baton_Metrics_V1_SummaryRequest()
        summary.groupBy = Self.everyGroup
        var list = Baton_Metrics_V1_ListHandoffsRequest()
        list.limit = 1000
        var handoffs: [Baton_Metrics_V1_Handoff] = []
        for id in ids {
            handoffs.append(try await core.handoff(id))
        }
        return Figures(summary: try await core.summary(summary), list: try await core.list(list), handoffs: handoffs)
    }

    @Test("shuffled, batched differently, late and duplicated: the same figures as in order", arguments: 1...6)
    func orderDoesNotMatter(seed: UInt64) async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        var random = SplitMix64(seed: seed)
        let handoffs = (0..<40).map { Self.randomHandoff($0, using: &random) }
        let ordered = handoffs.flatMap { $0 }.sorted { ($0.atUnixMs, $0.eventID) < ($1.atUnixMs, $1.eventID) }
        let ids = handoffs.compactMap(\.first?.handoffID)

        let inOrder = try await collectors.open("ordered")
        for event in ordered {
            _ = try await inOrder.record([event])
        }
        let expected = try await Self.figures(inOrder, ids: ids)
        #expect(expected.summary.overall.handoffsTotal == 40)

        // Shuffled, with a fifth of the events sent twice, in batches of 1 to 30.
        var arrivals = ordered + ordered.filter { _ in Int.random(in: 0..<5, using: &random) == 0 }
        arrivals.shuffle(using: &random)
        let shuffled = try await collectors.open("shuffled")
        var recorded: UInt32 = 0
        while !arrivals.isEmpty {
            let batch = arrivals.prefix(Int.random(in: 1...30, using: &random))
            arrivals.removeFirst(batch.count)
            recorded += try await shuffled.record(Array(batch)).recorded
        }
        #expect(recorded == UInt32(ordered.count))
        let actual = try await Self.figures(shuffled, ids: ids)
        #expect(actual.summary == expected.summary)
        #expect(actual.list == expected.list)
        #expect(actual.handoffs == expected.handoffs)
    }

    @Test("percentiles from the HDR histogram are within its precision of the exact ones", arguments: [7, 99])
    func percentiles(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        // Mostly 2-10 s, with a long tail: the shape time-to-live-human has.
        let values = (0..<20_000).map { _ -> Int64 in
            Bool.random(using: &random)
                ? Int64.random(in: 2_000...10_000, using: &random) : Int64.random(in: 1...120_000, using: &random)
        }
        var histogram = FiguresBuilder.histogram()
        values.forEach { histogram.record(UInt64($0)) }
        let percentiles = FiguresBuilder.percentiles(histogram, max: values.max()!)
        // The one-pass figures are the library's own, percentile by percentile.
        #expect(
            [percentiles.p50Ms, percentiles.p90Ms, percentiles.p99Ms]
                == [50.0, 90, 99].map { UInt32(histogram.valueAtPercentile($0)) }
        )
        let sorted = values.sorted()
        // The exact percentile, by nearest rank.
        func exact(_ percentile: Double) -> Int64 {
            sorted[Int((percentile / 100 * Double(sorted.count)).rounded(.up)) - 1]
        }
        for (figure, percentile) in [(percentiles.p50Ms, 50.0), (percentiles.p90Ms, 90), (percentiles.p99Ms, 99)] {
            let truth = exact(percentile)
            // Three significant digits: within 0.1% (and 1 ms for rounding).
            #expect(abs(Int64(figure) - truth) <= truth / 1000 + 1, "p\(percentile): \(figure) against \(truth)")
        }
        #expect(Int64(percentiles.maxMs) == sorted.last)
        #expect(percentiles.count == 20_000)
    }

    @Test("the figures survive a restart: the timelines are rebuilt from the stored events")
    func restart() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        var random = SplitMix64(seed: 42)
        let handoffs = (0..<25).map { Self.randomHandoff($0, using: &random) }
        let ids = handoffs.compactMap(\.first?.handoffID)
        let before: Figures
        do {
            let core = try await collectors.open()
            for events in handoffs {
                _ = try await core.record(events)
            }
            before = try await Self.figures(core, ids: ids)
        }
        let reopened = try await collectors.open()
        #expect(try await Self.figures(reopened, ids: ids) == before)
        #expect(try await reopened.record(handoffs[3]).duplicates == UInt32(handoffs[3].count))
    }

    @Test("Summary: the window, grouping, buckets, repeats and top reasons")
    func summary() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let core = try await collectors.open()
        var late = Events.designed("late", greeted: 9_000)
        late.edit(.routed) {
            $0.destination = "partner-bpo"
            $0.destinationKind = "partner"
        }
        var repeated = Events.designed("repeated", greeted: 3_000)
        repeated.add(.callerRepeated, at: 5_000) { $0.repeatedSlot = "postcode" }
        repeated.add(.callerRepeated, at: 6_000) { $0.repeatedSlot = "name" }
        var old = Events.designed("old")
        for index in old.events.indices {
            old.events[index].atUnixMs -= 7_200_000  // two hours earlier
        }
        for events in [Events.designed("good"), late, repeated, old] {
            _ = try await core.record(events.events)
        }
        var request = Baton_Metrics_V1_SummaryRequest()
        request.windowS = 3_600
        request.groupBy = [.destinationKind]
        let reply = try await core.summary(request)
        let overall = reply.overall
        #expect(overall.handoffsTotal == 3 && overall.handoffs == 1 && overall.failovers == 2)
        #expect(overall.repeats == 2 && overall.repeatsPerHandoff == 2.0 / 3)
        #expect(overall.buckets.under4S == 1 && overall.buckets.from4To6S == 1 && overall.buckets.from8To20S == 1)
        #expect(overall.timeToLiveHuman.count == 3 && overall.timeToLiveHuman.maxMs == 9_000)
        // 4,500 ms is recorded with a resolution of 4 ms: the histogram reports the top of its range.
        #expect((4_500...4_504).contains(overall.timeToLiveHuman.p50Ms))
        #expect(overall.timeToContextReady.p99Ms == 1_200)
        #expect(overall.topFailoverReasons.map(\.reason) == [.greetedLate, .repeated])
        #expect(reply.groups.map(\.key) == [["in_house"], ["partner"]])
        #expect(reply.groups.map(\.figures.handoffsTotal) == [2, 1])
        request.windowS = 0
        #expect(try await core.summary(request).overall.handoffsTotal == 4)
    }

    @Test("ListHandoffs filters by classification, reason and attribute, newest first, up to the limit")
    func list() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let core = try await collectors.open()
        for (index, name) in ["a", "b", "c", "d"].enumerated() {
            var events = Events.designed(name, greeted: index % 2 == 0 ? 4_000 : 12_000)
            for position in events.events.indices {
                events.events[position].atUnixMs += Int64(index) * 60_000
            }
            _ = try await core.record(events.events)
        }
        var request = Baton_Metrics_V1_ListHandoffsRequest()
        #expect(try await core.list(request).handoffs.map(\.handoffID) == ["d", "c", "b", "a"])
        request.limit = 2
        let limited = try await core.list(request)
        #expect(limited.handoffs.map(\.handoffID) == ["d", "c"] && limited.matched == 4)
        request.limit = 0
        request.reason = .greetedLate
        let late = try await core.list(request).handoffs
        #expect(late.map(\.handoffID) == ["d", "b"])
        #expect(late.first?.reasons.map(\.text) == ["greeted after 12 s (over 8 s)"])
        #expect(late.first?.timeline.map(\.kind) == Events.designed().events.map(\.kind))
        request.reason = .unspecified
        request.classification = .handoff
        request.workflow = "billing"
        #expect(try await core.list(request).handoffs.map(\.handoffID) == ["c", "a"])
        request.workflow = "claims"
        #expect(try await core.list(request).handoffs.isEmpty)
    }

    @Test("Export is Prometheus text that parses, with cumulative buckets and counts that agree with Summary")
    func export() async throws {
        let collectors = try Collectors()
        defer { collectors.remove() }
        let core = try await collectors.open()
        for (index, greeted) in [3_000, 5_000, 7_000, 9_000, 30_000].enumerated() {
            _ = try await core.record(Events.designed("h-\(index)", greeted: Int64(greeted)).events)
        }
        let text = Prometheus.text(try await core.figures())
        let families = try PrometheusText.parse(text)
        let live = try #require(families["baton_handoff_time_to_live_human_seconds"])
        #expect(live.type == "histogram")
        #expect(
            live.samples.filter { $0.name.hasSuffix("_bucket") }.map { "\($0.labels["le"]!)=\($0.value)" }
                == ["4=1.0", "6=2.0", "8=3.0", "20=4.0", "+Inf=5.0"]
        )
        #expect(live.samples.first { $0.name.hasSuffix("_sum") }?.value == 54)
        #expect(live.samples.first { $0.name.hasSuffix("_count") }?.value == 5)
        let handoffs = try #require(families["baton_handoffs_total"])
        #expect(
            handoffs.samples.map { "\($0.labels["classification"]!)=\($0.value)" } == ["handoff=3.0", "failover=2.0"]
        )
        let reasons = try #require(families["baton_failovers_total"])
        #expect(reasons.samples.first { $0.labels["reason"] == "greeted_late" }?.value == 2)
        #expect(reasons.samples.count == 6)
    }
}
