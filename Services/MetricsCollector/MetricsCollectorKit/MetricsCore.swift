import BatonProto
import BatonRPC
import BatonStore
import Foundation
import GRDB
import Logging
import SwiftProtobuf
import Synchronization

/// The collector's state: every stored event in SQLite, and each handoff's ``Timeline`` folded from them in
/// memory, which is what the figures are computed from.
///
/// The events are the record; the timelines are rebuilt from them on start, in the background (see
/// ``beginLoading()``), so that the collector records events at once however much history it keeps; the calls that
/// read figures wait until the history is in memory. An event is merged into its timeline only after its commit,
/// and only if the store had not seen its (handoff id, event id) before. Handoffs that started before the retention
/// window are pruned, durably, in the background, and never counted.
final class MetricsCore: Sendable {
    let store: Store
    let judging: Judging
    let logger: Logger
    /// Unix time in ms.
    let now: @Sendable () -> Int64
    /// How long a handoff is kept after it started, in ms; nil keeps every one.
    let retentionMs: Int64?
    let timelines: Mutex<[String: Timeline]>
    /// How much of the stored history is in memory.
    let loaded = LoadGate()
    /// Handoffs recorded while the history is read that had events stored before: their timelines may lack
    /// those until the read reaches them.
    let awaitingHistory = Mutex<Set<String>>([])

    /// How far ahead of the collector's clock an event's time may be.
    static let maxFutureMs: Int64 = 3_600_000

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Keyed by handoff first, so that one handoff's events sit together: reading a timeline is one range,
            // and a retried event is found by its key.
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        handoff_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        kind INTEGER NOT NULL,
                        at_ms INTEGER NOT NULL,
                        received_ms INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        PRIMARY KEY (handoff_id, event_id)
                    ) WITHOUT ROWID
                    """
            )
        }
        migrator.registerMigration("v2: handoffs by latest event") { db in
            // Each handoff's latest event time, so that a restart reads the newest handoffs first and answers a
            // window of recent ones before the rest of the history is in memory: a handoff starts no later than
            // its latest event, so every handoff that started at or after T has `last_at_ms` at or after T.
            try db.execute(
                sql: """
                    CREATE TABLE handoffs (
                        handoff_id TEXT PRIMARY KEY,
                        last_at_ms INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX handoffs_by_last_event ON handoffs (last_at_ms, handoff_id);
                    INSERT INTO handoffs (handoff_id, last_at_ms)
                        SELECT handoff_id, MAX(at_ms) FROM events GROUP BY handoff_id;
                    """
            )
        }
        return migrator
    }()

    /// Opens the store; the stored history is not read yet (``beginLoading()`` or ``open(database:judging:retention:logger:now:)``).
    init(
        database: String,
        judging: Judging = Judging(),
        retention: Duration? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) throws {
        self.store = try Store(path: database, migrator: Self.migrator)
        self.judging = judging
        self.retentionMs = retention.map { Int64($0.components.seconds) * 1000 }
        self.logger = logger
        self.now = now
        self.timelines = Mutex([:])
    }

    /// Opens the store and reads its whole history before returning: for tests and benchmarks.
    static func open(
        database: String,
        judging: Judging = Judging(),
        retention: Duration? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) async throws -> MetricsCore {
        let core = try MetricsCore(database: database, judging: judging, retention: retention, logger: logger, now: now)
        try await core.beginLoading()
        try await core.loaded.wait()
        return core
    }

    // MARK: - Recording

    /// What is wrong with `event`, naming the field under `path` (`event`, `events[3]`); nil when it is valid.
    func problem(in event: Baton_Metrics_V1_Event, at path: String, now: Int64) -> String? {
        if event.eventID.isEmpty {
            return "\(path).event_id is empty; expected the event's id, the same on every retry"
        }
        if event.handoffID.isEmpty {
            return "\(path).handoff_id is empty; expected the handoff's id"
        }
        if event.callID.isEmpty {
            return "\(path).call_id is empty; expected the call's id"
        }
        let kind = event.kind.rawValue
        guard kind > 0 && kind < Timeline.kinds else {
            return
                "\(path).kind is \(event.kind.rawValue); expected one of EVENT_KIND_GATE_FIRED ... EVENT_KIND_TRANSFER_FAILED"
        }
        if event.atUnixMs <= 0 {
            return "\(path).at_unix_ms is \(event.atUnixMs); expected when the event happened, in ms since 1970"
        }
        if event.atUnixMs > now + Self.maxFutureMs {
            return
                "\(path).at_unix_ms is \(event.atUnixMs - now) ms ahead of this host's clock; expected when the event happened"
        }
        if !["", "in_house", "partner"].contains(event.destinationKind) {
            return "\(path).destination_kind is '\(event.destinationKind)'; expected in_house or partner"
        }
        if case .UNRECOGNIZED(let value) = event.origin {
            return "\(path).origin is \(value); expected ORIGIN_DESIGNED or ORIGIN_UNDESIGNED"
        }
        return nil
    }

    /// Stores `events` in one commit and merges the new ones into their timelines. The events must be valid.
    func record(_ events: [Baton_Metrics_V1_Event]) async throws -> Baton_Metrics_V1_RecordReply {
        let received = self.now()
        // Encoded here, on the caller's thread, so that the committing thread only writes.
        let rows = try events.map { event -> (handoffID: String, eventID: String, kind: Int, at: Int64, body: Data) in
            var body = event
            body.handoffID = ""
            body.eventID = ""
            return (event.handoffID, event.eventID, event.kind.rawValue, event.atUnixMs, try body.serializedBytes())
        }
        let loading = !self.loaded.complete
        let (stored, stale) = try await self.store.write { db -> ([Int], [String]) in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO events (handoff_id, event_id, kind, at_ms, received_ms, body) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """
            )
            var stored: [Int] = []
            stored.reserveCapacity(rows.count)
            var latest: [String: Int64] = [:]
            for (index, row) in rows.enumerated() {
                try statement.execute(arguments: [row.handoffID, row.eventID, row.kind, row.at, received, row.body])
                if db.changesCount > 0 {
                    stored.append(index)
                    latest[row.handoffID] = max(latest[row.handoffID] ?? row.at, row.at)
                }
            }
            let handoff = try db.cachedStatement(
                sql: """
                    INSERT INTO handoffs (handoff_id, last_at_ms) VALUES (?, ?)
                    ON CONFLICT (handoff_id) DO UPDATE SET last_at_ms = max(last_at_ms, excluded.last_at_ms)
                    """
            )
            // While the history is being read, a handoff stored before may not be in memory yet.
            let known = loading ? try db.cachedStatement(sql: "SELECT 1 FROM handoffs WHERE handoff_id = ?") : nil
            var stale: [String] = []
            for (id, at) in latest {
                if let known, try Bool.fetchOne(known, arguments: [id]) != nil {
                    stale.append(id)
                }
                try handoff.execute(arguments: [id, at])
            }
            return (stored, stale)
        }
        if !stale.isEmpty, !self.loaded.complete {
            self.awaitingHistory.withLock { $0.formUnion(stale) }
        }
        self.timelines.withLock { timelines in
            for index in stored {
                timelines[events[index].handoffID, default: Timeline()].merge(events[index])
            }
        }
        var reply = Baton_Metrics_V1_RecordReply()
        reply.recorded = UInt32(stored.count)
        reply.duplicates = UInt32(events.count - stored.count)
        return reply
    }

    // MARK: - Reading

    /// The earliest start a handoff may have to be counted at `now`: the retention window's start, or none.
    func retainedSince(_ now: Int64) -> Int64 {
        self.retentionMs.map { now - $0 } ?? Int64.min
    }

    /// The earliest start counted for a request's window (0: all that is retained).
    private func since(windowS: UInt32, now: Int64) -> Int64 {
        max(self.retainedSince(now), windowS == 0 ? Int64.min : now - Int64(windowS) * 1000)
    }

    func summary(_ request: Baton_Metrics_V1_SummaryRequest) async throws -> Baton_Metrics_V1_SummaryReply {
        let now = self.now()
        let since = self.since(windowS: request.windowS, now: now)
        let keys = request.groupBy.compactMap(Self.key)
        var overall = FiguresBuilder()
        var groups: [[String]: FiguresBuilder] = [:]
        for timeline in try await self.timelines(since: since).values where timeline.start >= since {
            let assessment = Assessment(timeline, now: now, judging: self.judging)
            overall.add(assessment)
            if !keys.isEmpty {
                groups[keys.map { timeline[$0] }, default: FiguresBuilder()].add(assessment)
            }
        }
        var reply = Baton_Metrics_V1_SummaryReply()
        reply.windowS = request.windowS
        reply.computedAtUnixMs = now
        reply.groupBy = request.groupBy
        reply.overall = overall.message
        // Most handoffs first; equal counts by key, so that the order is the same on every call.
        reply.groups = groups.sorted { a, b in
            a.value.total != b.value.total ? a.value.total > b.value.total : a.key.lexicographicallyPrecedes(b.key)
        }
        .map { key, figures in
            var group = Baton_Metrics_V1_Group()
            group.key = key
            group.figures = figures.message
            return group
        }
        return reply
    }

    /// The overall figures of every retained handoff, for Export.
    func figures() async throws -> FiguresBuilder {
        let now = self.now()
        let since = self.retainedSince(now)
        var figures = FiguresBuilder()
        for timeline in try await self.timelines(since: since).values where timeline.start >= since {
            figures.add(Assessment(timeline, now: now, judging: self.judging))
        }
        return figures
    }

    func list(_ request: Baton_Metrics_V1_ListHandoffsRequest) async throws -> Baton_Metrics_V1_ListHandoffsReply {
        let now = self.now()
        let since = self.since(windowS: request.windowS, now: now)
        let wanted: [(Timeline.Key, String)] = [
            (.workflow, request.workflow), (.gate, request.gate), (.category, request.category),
            (.destination, request.destination), (.destinationKind, request.destinationKind), (.callID, request.callID),
        ].filter { !$0.1.isEmpty }
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 1000))
        let judgeEach = request.classification != .unspecified || request.reason != .unspecified
        // The newest `limit` of the matches, newest first: most handoffs are compared once with the oldest kept.
        var newest: [(id: String, timeline: Timeline)] = []
        var matched: UInt64 = 0
        func newer(_ a: (id: String, timeline: Timeline), than b: (id: String, timeline: Timeline)) -> Bool {
            (a.timeline.start, a.id) > (b.timeline.start, b.id)
        }
        for (id, timeline) in try await self.timelines(since: since) where timeline.start >= since {
            guard wanted.allSatisfy({ timeline[$0.0] == $0.1 }) else {
                continue
            }
            if judgeEach {
                let assessment = Assessment(timeline, now: now, judging: self.judging)
                if request.classification != .unspecified && assessment.classification != request.classification {
                    continue
                }
                if request.reason != .unspecified && !assessment.reasons.contains(request.reason) {
                    continue
                }
            }
            matched += 1
            let candidate = (id, timeline)
            if newest.count == limit, let oldest = newest.last, !newer(candidate, than: oldest) {
                continue
            }
            let position = newest.firstIndex { newer(candidate, than: $0) } ?? newest.endIndex
            newest.insert(candidate, at: position)
            if newest.count > limit {
                newest.removeLast()
            }
        }
        var reply = Baton_Metrics_V1_ListHandoffsReply()
        reply.matched = matched
        reply.handoffs = newest.map { id, timeline in
            self.message(
                id,
                timeline,
                Assessment(timeline, now: now, judging: self.judging),
                events: Self.outline(id, timeline)
            )
        }
        return reply
    }

    /// One handoff with every stored event; NOT_FOUND when none names it.
    func handoff(_ id: String) async throws -> Baton_Metrics_V1_Handoff {
        // From the store, which holds every event committed: this needs no history in memory.
        let events = try await self.store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT handoff_id, event_id, body FROM events WHERE handoff_id = ? ORDER BY at_ms, event_id",
                arguments: [id]
            ).map(Self.event)
        }
        var timeline = Timeline()
        for event in events {
            timeline.merge(event)
        }
        guard !events.isEmpty, timeline.start >= self.retainedSince(self.now()) else {
            throw RPCError(code: .notFound, message: "no event names handoff_id '\(id)'")
        }
        return self.message(id, timeline, Assessment(timeline, now: self.now(), judging: self.judging), events: events)
    }

    private func message(
        _ id: String,
        _ timeline: Timeline,
        _ assessment: Assessment,
        events: [Baton_Metrics_V1_Event]
    ) -> Baton_Metrics_V1_Handoff {
        var handoff = Baton_Metrics_V1_Handoff()
        handoff.handoffID = id
        handoff.callID = timeline[.callID]
        handoff.classification = assessment.classification
        let slots = timeline.repeatedSlots
        handoff.reasons = assessment.reasons.map { reason in
            var message = Baton_Metrics_V1_Reason()
            message.reason = reason
            message.text = assessment.text(reason, slots: slots, judging: self.judging)
            return message
        }
        handoff.startedAtUnixMs = timeline.start
        if let time = assessment.timeToContextReadyMs {
            handoff.timeToContextReadyMs = UInt32(clamping: time)
        }
        if let time = assessment.timeToLiveHumanMs {
            handoff.timeToLiveHumanMs = UInt32(clamping: time)
        }
        handoff.repeats = UInt32(assessment.repeats)
        handoff.repeatedSlots = slots
        handoff.bucket = assessment.bucket
        handoff.attributes.workflow = timeline[.workflow]
        handoff.attributes.gate = timeline[.gate]
        handoff.attributes.category = timeline[.category]
        handoff.attributes.destination = timeline[.destination]
        handoff.attributes.destinationKind = timeline[.destinationKind]
        handoff.attributes.origin = timeline.origin
        handoff.timeline = events
        handoff.events = UInt32(timeline.events)
        return handoff
    }

    /// The first event of each kind and every caller_repeated, oldest first, as far as the timeline keeps them.
    private static func outline(_ id: String, _ timeline: Timeline) -> [Baton_Metrics_V1_Event] {
        var events: [(Stamp, Baton_Metrics_V1_EventKind, String)] = Baton_Metrics_V1_EventKind.allCases.compactMap {
            kind in
            guard kind != .callerRepeated, let stamp = timeline.first(kind) else {
                return nil
            }
            return (stamp, kind, "")
        }
        events += timeline.repeats.map { ($0.stamp, .callerRepeated, $0.slot) }
        return events.sorted { $0.0 < $1.0 }.map { stamp, kind, slot in
            var event = Baton_Metrics_V1_Event()
            event.eventID = stamp.eventID
            event.handoffID = id
            event.callID = timeline[.callID]
            event.kind = kind
            event.atUnixMs = stamp.at
            event.repeatedSlot = slot
            return event
        }
    }

    static func event(_ row: Row) throws -> Baton_Metrics_V1_Event {
        let body: Data = row["body"]
        var event = try Baton_Metrics_V1_Event(serializedBytes: body)
        event.handoffID = row["handoff_id"]
        event.eventID = row["event_id"]
        return event
    }

    static func key(_ groupBy: Baton_Metrics_V1_GroupBy) -> Timeline.Key? {
        switch groupBy {
        case .workflow: .workflow
        case .gate: .gate
        case .category: .category
        case .destination: .destination
        case .destinationKind: .destinationKind
        default: nil
        }
    }
}
