package import BatonProto
import BatonRPC
import BatonRuntime
import BatonStore
package import Foundation
import GRDB
package import Logging
import SwiftProtobuf
import Synchronization

/// The router's state: the configuration, each destination's live state, and the open reservations, in memory
/// under one lock; every decision and reservation change is also written to the store before it is answered.
///
/// A decision is made and its capacity reserved in memory at once, so concurrent handoffs see each other's
/// reservations and spread out; the reply waits for the group commit. If the write fails, the reservation is
/// undone and the caller hears UNAVAILABLE.
package final class RouterCore: Sendable {
    /// An open reservation (held or accepted), with what it takes to route its handoff again.
    ///
    /// What cannot change while it is open is a shared ``Record``, so that the table of open reservations holds a
    /// few words for each: that table grows by thousands of reservations a second, and growing it moves every one;
    /// a whole decision (its reply alone is some 170 bytes of fields) would be moved, and copied with a retain of
    /// each field whenever a reservation is read.
    struct Reservation: Sendable {
        final class Record: Sendable {
            let id: String
            let handoff: Handoff
            let destinationID: String
            let createdAt: Date
            let expiresAt: Date
            /// Destinations that declined this handoff.
            let excluded: Set<String>
            /// The decision that made it, without its reasons and attempt.
            let decision: Baton_Routing_V1_RouteReply
            let reasons: [Baton_Routing_V1_Reason]

            init(
                id: String,
                handoff: Handoff,
                destinationID: String,
                createdAt: Date,
                expiresAt: Date,
                excluded: Set<String>,
                decision: Baton_Routing_V1_RouteReply,
                reasons: [Baton_Routing_V1_Reason]
            ) {
                self.id = id
                self.handoff = handoff
                self.destinationID = destinationID
                self.createdAt = createdAt
                self.expiresAt = expiresAt
                self.excluded = excluded
                self.decision = decision
                self.reasons = reasons
            }
        }

        let record: Record
        var state: Baton_Routing_V1_Reservation.State
        var acceptedAt: Date?
        /// The decision's attempt: 0 until it is stored.
        var attempt: UInt32

        init(
            id: String,
            handoff: Handoff,
            destinationID: String,
            state: Baton_Routing_V1_Reservation.State,
            createdAt: Date,
            expiresAt: Date,
            acceptedAt: Date? = nil,
            excluded: Set<String>,
            decision: Baton_Routing_V1_RouteReply,
            reasons: [Baton_Routing_V1_Reason],
            attempt: UInt32
        ) {
            self.record = Record(
                id: id,
                handoff: handoff,
                destinationID: destinationID,
                createdAt: createdAt,
                expiresAt: expiresAt,
                excluded: excluded,
                decision: decision,
                reasons: reasons
            )
            self.state = state
            self.acceptedAt = acceptedAt
            self.attempt = attempt
        }

        var id: String { self.record.id }
        var handoff: Handoff { self.record.handoff }
        var destinationID: String { self.record.destinationID }
        var createdAt: Date { self.record.createdAt }
        var expiresAt: Date { self.record.expiresAt }
        var excluded: Set<String> { self.record.excluded }

        /// The decision that made it, for a repeated Route.
        var decided: Decided {
            get throws {
                try Decided(head: self.record.decision, reasons: self.record.reasons, attempt: self.attempt)
            }
        }
    }

    private struct State {
        var configuration: RoutingConfiguration
        var source: String
        var problems: [ConfigProblem] = []
        var modified: Int?
        var live: [String: LiveState] = [:]
        var open: [String: Reservation] = [:]
        var openByHandoff: [String: String] = [:]
        /// What is kept per handoff shape (category and skills), for this configuration.
        var shapes: [ShapeKey: Shape] = [:]
        /// The random bits of reservation ids, which must be unique, not secret: ListDestinations shows them.
        var random = SplitMix64()
        /// The held reservations by expiry.
        var expiries = ExpiryQueue()
    }

    private struct ShapeKey: Hashable {
        var category: String
        var skills: [String]
    }

    private struct Shape {
        /// ``RoutingConfiguration/fixedProblems(category:skills:)``.
        var fixed: [String?]
        /// The last decision for a normal and for an urgent handoff of this shape.
        var normal: KeptDecision?
        var urgent: KeptDecision?
    }

    /// Handoff shapes kept; past this many, the kept ones are dropped and kept anew.
    private static let keptShapes = 4096

    let store: Store
    let file: String
    let logger: Logger
    let now: @Sendable () -> Date
    private let state: Mutex<State>

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE decisions (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        handoff_id TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        decided_at INTEGER NOT NULL,
                        reply BLOB NOT NULL
                    );
                    CREATE INDEX decisions_by_handoff ON decisions(handoff_id);
                    CREATE TABLE reservations (
                        id TEXT PRIMARY KEY,
                        handoff_id TEXT NOT NULL,
                        destination_id TEXT NOT NULL,
                        state INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        accepted_at INTEGER,
                        ended_at INTEGER,
                        detail TEXT NOT NULL DEFAULT '',
                        request BLOB NOT NULL,
                        excluded TEXT NOT NULL DEFAULT '',
                        reply BLOB NOT NULL
                    );
                    CREATE INDEX reservations_by_handoff ON reservations(handoff_id);
                    CREATE INDEX reservations_open ON reservations(state) WHERE state IN (1, 2);
                    """
            )
        }
        migrator.registerMigration("v2: a reservation names its decision") { db in
            // A reservation's reply is its decision's: rows from v1 keep their own copy, later rows leave it empty.
            // It is found through its decision, whose ids only grow, so that the index grows at its end instead of
            // touching a random page of a handoff index on every insert. A v1 reservation was made by the last
            // decision for its handoff at the moment it was created.
            try db.execute(
                sql: """
                    ALTER TABLE reservations ADD COLUMN decision_id INTEGER REFERENCES decisions(id);
                    UPDATE reservations SET decision_id = (
                        SELECT MAX(d.id) FROM decisions d
                        WHERE d.handoff_id = reservations.handoff_id AND d.decided_at = reservations.created_at
                    );
                    DROP INDEX reservations_by_handoff;
                    CREATE INDEX reservations_by_decision ON reservations(decision_id);
                    """
            )
        }
        migrator.registerMigration("v3: reasons shared by decisions are stored once") { db in
            // A decision made from v3 on stores its reply without reasons, and names the row holding them: the
            // reply is `reply` followed by those reasons (protobuf concatenation). Earlier rows keep their whole
            // reply and no reason set.
            try db.execute(
                sql: """
                    CREATE TABLE reason_sets (id INTEGER PRIMARY KEY, reasons BLOB NOT NULL);
                    ALTER TABLE decisions ADD COLUMN reason_set INTEGER REFERENCES reason_sets(id);
                    """
            )
        }
        return migrator
    }()

    /// Loads `file` (which must be valid) and the open reservations stored in `database`.
    package init(
        file: String,
        database: String,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.file = file
        self.logger = logger
        self.now = now
        let configuration = try Self.load(file)
        self.store = try Store(path: database, migrator: Self.migrator)
        var state = State(configuration: configuration.configuration, source: file, modified: configuration.modified)
        let rows = try self.store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.*, COALESCE(d.reply, r.reply) AS decision_reply, s.reasons AS decision_reasons, d.attempt
                    FROM reservations r
                    LEFT JOIN decisions d ON d.id = r.decision_id
                    LEFT JOIN reason_sets s ON s.id = d.reason_set
                    WHERE r.state IN (1, 2)
                    """
            )
        }
        for row in rows {
            let request = try Baton_Routing_V1_RouteRequest(serializedBytes: Self.bytes(row["request"]))
            var decision = try Baton_Routing_V1_RouteReply(
                serializedBytes: Self.bytes(row["decision_reply"]) + Self.bytes(row["decision_reasons"])
            )
            let reasons = decision.reasons
            decision.reasons = []
            let excluded: String = row["excluded"]
            let reservation = Reservation(
                id: row["id"],
                handoff: Self.handoff(request),
                destinationID: row["destination_id"],
                state: .init(rawValue: row["state"]) ?? .held,
                createdAt: Self.date(row["created_at"]),
                expiresAt: Self.date(row["expires_at"]),
                acceptedAt: (row["accepted_at"] as Int64?).map(Self.date),
                excluded: Set(excluded.split(separator: ",").map(String.init)),
                decision: decision,
                reasons: reasons,
                attempt: row["attempt"] ?? decision.attempt
            )
            state.open[reservation.id] = reservation
            state.openByHandoff[reservation.handoff.handoffID] = reservation.id
            Self.count(reservation, into: &state.live, sign: 1)
            if reservation.state == .held {
                state.expiries.insert(reservation.id, expiringAt: reservation.expiresAt)
            }
        }
        self.state = Mutex(state)
        logger.info(
            "router: \(configuration.configuration.destinations.count) destinations from \(file); \(rows.count) open reservations restored"
        )
    }

    // MARK: - Configuration

    private static func load(_ file: String) throws -> (configuration: RoutingConfiguration, modified: Int?) {
        let text: String
        do {
            text = try TextFile.read(file)
        } catch {
            throw InvalidConfigFile(problems: [ConfigProblem(file: file, line: 1, column: 1, message: "\(error)")])
        }
        return (try DestinationsFile.parse(text, file: file), Self.modificationTime(file))
    }

    private static func modificationTime(_ file: String) -> Int? {
        var info = stat()
        guard stat(file, &info) == 0 else {
            return nil
        }
        return Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
    }

    /// Reads the file again; an invalid one is refused (its problems returned and kept for ListDestinations) and
    /// the previous configuration keeps serving. Live state and reservations carry over by destination id.
    @discardableResult
    func reload() -> [ConfigProblem] {
        do {
            let loaded = try Self.load(self.file)
            self.state.withLock { state in
                state.configuration = loaded.configuration
                state.modified = loaded.modified
                state.problems = []
                state.shapes = [:]
            }
            self.logger.info(
                "router: reloaded \(loaded.configuration.destinations.count) destinations from \(self.file)"
            )
            return []
        } catch let error as InvalidConfigFile {
            self.state.withLock { state in
                state.problems = error.problems
                state.modified = Self.modificationTime(self.file)
            }
            self.logger.error("router: \(self.file) refused; the previous configuration keeps serving:\n\(error)")
            return error.problems
        } catch {
            return [ConfigProblem(file: self.file, line: 1, column: 1, message: "\(error)")]
        }
    }

    func changedOnDisk() -> Bool {
        let modified = Self.modificationTime(self.file)
        return self.state.withLock { $0.modified != modified }
    }

    var configuration: RoutingConfiguration {
        self.state.withLock { $0.configuration }
    }

    // MARK: - Routing

    /// A decision as it is answered: the reply, in the parts it is made of, and its binary protobuf encoding. The
    /// RPC answers the encoding; the reply is put together only when asked for.
    struct Decided: Sendable {
        /// The reply without its reasons and attempt.
        var head: Baton_Routing_V1_RouteReply
        var reasons: [Baton_Routing_V1_Reason]
        var attempt: UInt32
        var encoded: [UInt8]

        var reply: Baton_Routing_V1_RouteReply {
            var reply = self.head
            reply.reasons = self.reasons
            reply.attempt = self.attempt
            return reply
        }

        init(head: Baton_Routing_V1_RouteReply, reasons: [Baton_Routing_V1_Reason], attempt: UInt32, encoded: [UInt8]) {
            self.head = head
            self.reasons = reasons
            self.attempt = attempt
            self.encoded = encoded
        }

        /// Encodes the reply its parts make.
        init(head: Baton_Routing_V1_RouteReply, reasons: [Baton_Routing_V1_Reason], attempt: UInt32) throws {
            self.init(head: head, reasons: reasons, attempt: attempt, encoded: [])
            self.encoded = try self.reply.serializedBytes()
        }
    }

    package func route(_ request: Baton_Routing_V1_RouteRequest) async throws -> Baton_Routing_V1_RouteReply {
        try await self.routeEncoded(request).reply
    }

    func routeEncoded(_ request: Baton_Routing_V1_RouteRequest) async throws -> Decided {
        let handoff = Self.handoff(request)
        let now = self.now()
        enum Made {
            /// The handoff holds an open reservation: the decision that made it, again.
            case repeated(Reservation)
            case decided(Baton_Routing_V1_RouteReply, Reasons, Reservation?)
        }
        let made = self.state.withLock { state -> Made in
            if let id = state.openByHandoff[handoff.handoffID], let open = state.open[id] {
                return .repeated(open)
            }
            let made = Self.decide(handoff, excluded: [], in: &state, now: now)
            return .decided(made.reply, made.reasons, made.reservation)
        }
        switch made {
        case .repeated(let open):
            return try open.decided
        case .decided(let reply, let reasons, let reservation):
            return try await self.commit(
                reply,
                reasons: reasons,
                reservation: reservation,
                request: request,
                ending: nil
            )
        }
    }

    /// Decides and, when routed, reserves in memory; the reply comes without its reasons, which are beside it. The
    /// decision is the one kept for the handoff's shape while that holds (see ``KeptDecision``); otherwise it is
    /// made afresh, and kept.
    private static func decide(
        _ handoff: Handoff,
        excluded: Set<String>,
        in state: inout State,
        now: Date
    ) -> (reply: Baton_Routing_V1_RouteReply, reasons: Reasons, reservation: Reservation?) {
        let key = ShapeKey(category: handoff.category, skills: handoff.skills)
        if state.shapes[key] == nil {
            if state.shapes.count >= Self.keptShapes {
                state.shapes = [:]
            }
            state.shapes[key] = Shape(
                fixed: state.configuration.fixedProblems(category: handoff.category, skills: handoff.skills)
            )
        }
        let shape = state.shapes[key]!
        let live = state.live
        let configuration = state.configuration
        let decision: Decision
        let reasons: Reasons
        let kept = excluded.isEmpty ? (handoff.urgent ? shape.urgent : shape.normal) : nil
        let holds = configuration.destinations.withUnsafeBufferPointer { destinations in
            kept?.holds(at: now) { index in
                Prediction(
                    agents: destinations[index].agents,
                    averageHandleSeconds: destinations[index].averageHandleSeconds,
                    live: live[destinations[index].id] ?? LiveState(),
                    policy: configuration.policy,
                    now: now
                )
            } ?? false
        }
        if let kept, holds {
            (decision, reasons) = (kept.decision, kept.reasons)
        } else {
            decision = configuration.decide(
                handoff,
                live: { live[$0] ?? LiveState() },
                now: now,
                excluded: excluded,
                fixed: shape.fixed
            )
            reasons = Reasons(decision.verdicts)
            if excluded.isEmpty {
                let kept = KeptDecision(decision, reasons: reasons, at: now)
                if handoff.urgent {
                    state.shapes[key]?.urgent = kept
                } else {
                    state.shapes[key]?.normal = kept
                }
            }
        }
        var reply = Baton_Routing_V1_RouteReply()
        reply.handoffID = handoff.handoffID
        reply.callID = handoff.callID
        reply.decidedAtUnixMs = Self.milliseconds(now)
        guard let index = decision.chosen, let prediction = decision.prediction else {
            reply.outcome = .noDestination
            if let next = decision.nextOpening {
                reply.nextOpenAtUnixMs = Self.milliseconds(next.at)
                reply.nextOpenDestinationID = next.destinationID
            }
            return (reply, reasons, nil)
        }
        let expires = now.addingTimeInterval(state.configuration.policy.reservationTimeoutSeconds)
        reply.outcome = .routed
        state.configuration.destinations.withUnsafeBufferPointer { destinations in
            reply.destinationID = destinations[index].id
            reply.kind = destinations[index].kind == .inHouse ? .inHouse : .partner
            reply.transferAddress = destinations[index].transfer
        }
        reply.predictedLiveHumanMs = prediction.milliseconds
        reply.reservationID = Self.reservationID(at: now, random: &state.random)
        reply.reservationExpiresAtUnixMs = Self.milliseconds(expires)
        let reservation = Reservation(
            id: reply.reservationID,
            handoff: handoff,
            destinationID: reply.destinationID,
            state: .held,
            createdAt: now,
            expiresAt: expires,
            excluded: excluded,
            decision: reply,
            reasons: reasons.messages,
            attempt: 0
        )
        state.open[reservation.id] = reservation
        state.openByHandoff[handoff.handoffID] = reservation.id
        state.expiries.insert(reservation.id, expiringAt: expires)
        Self.count(reservation, into: &state.live, sign: 1)
        return (reply, reasons, reservation)
    }

    /// Stores a decision (and its reservation, and the end of the reservation it replaces) and returns the reply
    /// with its attempt number. On failure the in-memory reservation is undone.
    ///
    /// `reply` comes without its reasons and attempt, and is encoded once, here, on the caller's thread: that serves
    /// both the store and the answer, to which ``Reasons/encoded`` and the attempt, known only inside the write and
    /// stored in its own column, are appended. Reasons shared by several decisions are stored once, in
    /// `reason_sets`.
    private func commit(
        _ reply: Baton_Routing_V1_RouteReply,
        reasons: Reasons,
        reservation: Reservation?,
        request: Baton_Routing_V1_RouteRequest,
        ending: (reservation: Reservation, at: Date, detail: String)?
    ) async throws -> Decided {
        do {
            let requestBytes: [UInt8] = reservation == nil ? [] : try request.serializedBytes()
            let headBytes: [UInt8] = try reply.serializedBytes()
            let attempt = try await self.store.write { db -> UInt32 in
                if let ending {
                    try Self.update(ending.reservation, in: db, endedAt: ending.at, detail: ending.detail)
                }
                // Reasons shared with earlier decisions are stored once, by the first write that needs them.
                var reasonsRow = reasons.row
                if reasonsRow == nil {
                    try db.cachedStatement(sql: "INSERT INTO reason_sets (reasons) VALUES (?)").execute(
                        arguments: [Data(reasons.encoded)]
                    )
                    reasonsRow = db.lastInsertedRowID
                    reasons.inserted(db.lastInsertedRowID, in: db)
                }
                let previous = try db.run(
                    "SELECT COALESCE(MAX(attempt), 0) FROM decisions WHERE handoff_id = ?",
                    [.text(reply.handoffID)]
                )
                let attempt = UInt32((previous ?? 0) + 1)
                try db.run(
                    """
                    INSERT INTO decisions (handoff_id, attempt, decided_at, reply, reason_set)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                    [
                        .text(reply.handoffID), .integer(Int64(attempt)), .integer(reply.decidedAtUnixMs),
                        .blob(headBytes), reasonsRow.map(SQLiteValue.integer) ?? .null,
                    ]
                )
                if let reservation {
                    // The reply is the decision's: stored once, in decisions, and joined back on restore.
                    try db.run(
                        """
                        INSERT INTO reservations (id, handoff_id, destination_id, state, created_at, expires_at,
                            request, excluded, reply, decision_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, X'', ?)
                        """,
                        [
                            .text(reservation.id), .text(reservation.handoff.handoffID),
                            .text(reservation.destinationID), .integer(Int64(reservation.state.rawValue)),
                            .integer(Self.milliseconds(reservation.createdAt)),
                            .integer(Self.milliseconds(reservation.expiresAt)), .blob(requestBytes),
                            .text(reservation.excluded.sorted().joined(separator: ",")),
                            .integer(db.lastInsertedRowID),
                        ]
                    )
                }
                return attempt
            }
            if let reservation {
                self.state.withLock { $0.open[reservation.id]?.attempt = attempt }
            }
            return Decided(
                head: reply,
                reasons: reasons.messages,
                attempt: attempt,
                encoded: Self.appendingAttempt(attempt, to: headBytes + reasons.encoded)
            )
        } catch {
            if let reservation {
                self.state.withLock { state in
                    if state.open.removeValue(forKey: reservation.id) != nil {
                        state.openByHandoff[reservation.handoff.handoffID] = nil
                        Self.count(reservation, into: &state.live, sign: -1)
                    }
                }
            }
            self.logger.error("router: could not store the decision for handoff \(reply.handoffID): \(error)")
            throw RPCError(code: .unavailable, message: "the decision could not be stored: \(error)")
        }
    }

    /// `encoded`, a RouteReply without its attempt, with the attempt field added at the end. Protobuf decoders
    /// take fields in any order, so the result decodes as the reply with that attempt, as if encoded whole.
    static func appendingAttempt(_ attempt: UInt32, to encoded: [UInt8]) -> [UInt8] {
        var bytes = encoded
        bytes.append(4 << 3)  // RouteReply.attempt is field 4 (router.proto), wire type 0: varint
        var value = attempt
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    // MARK: - Reservations

    func accept(_ id: String) async throws -> Baton_Routing_V1_Reservation {
        let now = self.now()
        let accepted = try self.state.withLock { state throws(RPCError) -> Reservation? in
            guard var reservation = state.open[id] else {
                return nil
            }
            guard reservation.state == .held else {
                return reservation  // accepted already: the same answer again
            }
            Self.count(reservation, into: &state.live, sign: -1)
            reservation.state = .accepted
            reservation.acceptedAt = now
            Self.count(reservation, into: &state.live, sign: 1)
            state.open[id] = reservation
            return reservation
        }
        guard let accepted else {
            throw try await self.closedOrUnknown(id)
        }
        try await self.store.write { db in try Self.update(accepted, in: db) }
        return Self.message(accepted, endedAt: nil, detail: "")
    }

    func release(_ id: String, outcome: Baton_Routing_V1_ReleaseOutcome) async throws -> Baton_Routing_V1_Reservation {
        let detail: String
        switch outcome {
        case .connected: detail = "connected"
        case .abandoned: detail = "abandoned"
        case .failed: detail = "failed"
        default:
            throw RPCError.invalidArgument("outcome is unset; expected CONNECTED, ABANDONED or FAILED")
        }
        let now = self.now()
        guard var removed = self.state.withLock({ Self.remove(id, from: &$0) }) else {
            throw try await self.closedOrUnknown(id)
        }
        removed.state = .released
        let ended = removed
        try await self.store.write { db in try Self.update(ended, in: db, endedAt: now, detail: detail) }
        return Self.message(ended, endedAt: now, detail: detail)
    }

    func decline(_ id: String, reason: String) async throws -> Baton_Routing_V1_RouteReply {
        try await self.declineEncoded(id, reason: reason).reply
    }

    func declineEncoded(_ id: String, reason: String) async throws -> Decided {
        let now = self.now()
        let made = self.state.withLock {
            state -> (declined: Reservation, reply: Baton_Routing_V1_RouteReply, reasons: Reasons, next: Reservation?)?
            in
            guard let declined = Self.remove(id, from: &state) else {
                return nil
            }
            let excluded = declined.excluded.union([declined.destinationID])
            let made = Self.decide(declined.handoff, excluded: excluded, in: &state, now: now)
            return (declined, made.reply, made.reasons, made.reservation)
        }
        guard let made else {
            throw try await self.closedOrUnknown(id)
        }
        var declined = made.declined
        declined.state = .declined
        let request = Self.request(declined.handoff)
        let ending = declined
        let detail = reason.isEmpty ? "declined" : "declined: \(reason)"
        return try await self.commit(
            made.reply,
            reasons: made.reasons,
            reservation: made.next,
            request: request,
            ending: (ending, now, detail)
        )
    }

    /// Expires held reservations whose time is up; returns how many.
    @discardableResult
    func expire() async throws -> Int {
        let now = self.now()
        let expired = self.state.withLock { state -> [Reservation] in
            state.expiries.takeDue(at: now).compactMap { id in
                // Accepted, released or declined since: not to expire.
                guard let open = state.open[id], open.state == .held else {
                    return nil
                }
                return Self.remove(id, from: &state)
            }
        }
        guard !expired.isEmpty else {
            return 0
        }
        let ended = expired.map { reservation in
            var ended = reservation
            ended.state = .expired
            self.logger.info("router: reservation \(ended.id) at \(ended.destinationID) expired unaccepted")
            return ended
        }
        // One write for all of them: one commit, whatever the number.
        try await self.store.write { db in
            for reservation in ended {
                try Self.update(reservation, in: db, endedAt: now, detail: "not accepted or released in time")
            }
        }
        return expired.count
    }

    private static func remove(_ id: String, from state: inout State) -> Reservation? {
        guard let reservation = state.open.removeValue(forKey: id) else {
            return nil
        }
        state.openByHandoff[reservation.handoff.handoffID] = nil
        Self.count(reservation, into: &state.live, sign: -1)
        return reservation
    }

    /// The error for a reservation that is not open: FAILED_PRECONDITION naming its state, or NOT_FOUND.
    private func closedOrUnknown(_ id: String) async throws -> RPCError {
        guard !id.isEmpty else {
            return RPCError.invalidArgument("reservation_id is empty; expected the id Route returned")
        }
        let stored = try await self.store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT state FROM reservations WHERE id = ?", arguments: [id])
        }
        guard let stored else {
            return RPCError.notFound("no reservation '\(id)'")
        }
        let state = Baton_Routing_V1_Reservation.State(rawValue: stored) ?? .unspecified
        return RPCError(
            code: .failedPrecondition,
            message: "reservation '\(id)' is \(Self.name(state)) already; expected a held reservation"
        )
    }

    /// `rsv-` and the time in ms then random bits, in hex: ids made later sort later, so that the reservations'
    /// index grows at its end instead of touching a random page for every insert.
    static func reservationID(at time: Date, random: inout some RandomNumberGenerator) -> String {
        let milliseconds = UInt64(max(0, Self.milliseconds(time)))
        let bits = random.next()
        let digits = Array("0123456789abcdef".utf8)
        var id = Array("rsv-".utf8)
        id.reserveCapacity(33)
        for shift in stride(from: 44, through: 0, by: -4) {
            id.append(digits[Int(milliseconds >> UInt64(shift) & 0xF)])
        }
        id.append(UInt8(ascii: "-"))
        for shift in stride(from: 60, through: 0, by: -4) {
            id.append(digits[Int(bits >> UInt64(shift) & 0xF)])
        }
        return String(decoding: id, as: UTF8.self)
    }

    static func name(_ state: Baton_Routing_V1_Reservation.State) -> String {
        switch state {
        case .held: "held"
        case .accepted: "accepted"
        case .declined: "declined"
        case .released: "released"
        case .expired: "expired"
        default: "unknown"
        }
    }

    private static func update(
        _ reservation: Reservation,
        in db: Database,
        endedAt: Date? = nil,
        detail: String = ""
    ) throws {
        try db.run(
            "UPDATE reservations SET state = ?, accepted_at = ?, ended_at = ?, detail = ? WHERE id = ?",
            [
                .integer(Int64(reservation.state.rawValue)),
                reservation.acceptedAt.map { .integer(Self.milliseconds($0)) } ?? .null,
                endedAt.map { .integer(Self.milliseconds($0)) } ?? .null, .text(detail), .text(reservation.id),
            ]
        )
    }

    // MARK: - Availability and listing

    func updateAvailability(
        _ request: Baton_Routing_V1_UpdateAvailabilityRequest
    ) throws -> Baton_Routing_V1_DestinationState {
        guard !request.destinationID.isEmpty else {
            throw RPCError.invalidArgument("destination_id is empty; expected a destination of destinations.yaml")
        }
        for (name, value) in [
            ("agents_ready", request.agentsReady), ("agents_busy", request.agentsBusy),
            ("queue_length", request.queueLength),
        ] where value < 0 {
            throw RPCError.invalidArgument("\(name) is \(value); expected a count of zero or more")
        }
        let now = self.now()
        let at = request.atUnixMs == 0 ? now : Date(timeIntervalSince1970: Double(request.atUnixMs) / 1000)
        return try self.state.withLock { state throws(RPCError) in
            guard state.configuration.destinations.contains(where: { $0.id == request.destinationID }) else {
                throw RPCError.notFound(
                    "destination_id '\(request.destinationID)' is not a destination; known: "
                        + state.configuration.destinations.map(\.id).joined(separator: ", ")
                )
            }
            let availability = Availability(
                agentsReady: Int(request.agentsReady),
                agentsBusy: Int(request.agentsBusy),
                queueLength: Int(request.queueLength),
                at: at
            )
            if let previous = state.live[request.destinationID]?.availability, previous.at > at {
                // An older report than the one we have: keep the newer.
            } else {
                state.live[request.destinationID, default: LiveState()].availability = availability
            }
            let destination = state.configuration.destinations.first { $0.id == request.destinationID }!
            return Self.describe(destination, in: state, now: now)
        }
    }

    func list() -> Baton_Routing_V1_ListDestinationsReply {
        let now = self.now()
        return self.state.withLock { state in
            var reply = Baton_Routing_V1_ListDestinationsReply()
            reply.destinations = state.configuration.destinations.map { Self.describe($0, in: state, now: now) }
            reply.source = state.source
            reply.problems = state.problems.map(Self.problem)
            return reply
        }
    }

    func explain(_ handoffID: String) async throws -> Baton_Routing_V1_ExplainReply {
        guard !handoffID.isEmpty else {
            throw RPCError.invalidArgument("handoff_id is empty; expected the id a Route call carried")
        }
        let reply = try await self.store.pool.read { db -> Baton_Routing_V1_ExplainReply in
            var reply = Baton_Routing_V1_ExplainReply()
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT d.reply, s.reasons, d.attempt FROM decisions d
                    LEFT JOIN reason_sets s ON s.id = d.reason_set
                    WHERE d.handoff_id = ? ORDER BY d.id
                    """,
                arguments: [handoffID]
            ) {
                var decision = try Baton_Routing_V1_RouteReply(
                    serializedBytes: Self.bytes(row["reply"]) + Self.bytes(row["reasons"])
                )
                decision.attempt = row["attempt"]
                reply.decisions.append(decision)
            }
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT r.* FROM decisions d JOIN reservations r ON r.decision_id = d.id
                    WHERE d.handoff_id = ? ORDER BY r.created_at, r.decision_id
                    """,
                arguments: [handoffID]
            ) {
                var reservation = Baton_Routing_V1_Reservation()
                reservation.id = row["id"]
                reservation.handoffID = row["handoff_id"]
                reservation.destinationID = row["destination_id"]
                reservation.state = .init(rawValue: row["state"]) ?? .unspecified
                reservation.createdAtUnixMs = row["created_at"]
                reservation.expiresAtUnixMs = row["expires_at"]
                reservation.endedAtUnixMs = row["ended_at"] ?? 0
                reservation.detail = row["detail"]
                reservation.callID = reply.decisions.first?.callID ?? ""
                reply.reservations.append(reservation)
            }
            return reply
        }
        guard !reply.decisions.isEmpty else {
            throw RPCError.notFound("no decision for handoff '\(handoffID)'")
        }
        return reply
    }

    private static func describe(
        _ destination: Destination,
        in state: State,
        now: Date
    ) -> Baton_Routing_V1_DestinationState {
        let live = state.live[destination.id] ?? LiveState()
        let prediction = Prediction(destination: destination, live: live, policy: state.configuration.policy, now: now)
        var message = Baton_Routing_V1_DestinationState()
        message.id = destination.id
        message.kind = destination.kind == .inHouse ? .inHouse : .partner
        message.skills = destination.skills.sorted()
        message.certifications = destination.certifications.sorted()
        message.transferAddress = destination.transfer
        message.agents = UInt32(destination.agents)
        message.averageHandleS = destination.averageHandleSeconds
        message.costPerMin = destination.costPerMinute
        message.context = destination.context.rawValue
        message.timeZone = destination.hours.timeZone.identifier
        message.openNow = destination.hours.isOpen(at: now)
        if !message.openNow, let next = destination.hours.nextOpening(after: now) {
            message.nextOpenAtUnixMs = Self.milliseconds(next)
        }
        if let availability = live.availability {
            message.availability.agentsReady = Int32(availability.agentsReady)
            message.availability.agentsBusy = Int32(availability.agentsBusy)
            message.availability.queueLength = Int32(availability.queueLength)
            message.availability.atUnixMs = Self.milliseconds(availability.at)
            message.availability.stale = prediction.stale
        }
        message.heldReservations = UInt32(live.held)
        message.acceptedReservations = UInt32(live.accepted.count)
        message.freeAgents = Int32(prediction.freeAgents)
        message.predictedLiveHumanMs = prediction.milliseconds
        message.reservations = state.open.values
            .filter { $0.destinationID == destination.id }
            .sorted { $0.createdAt < $1.createdAt }
            .map { Self.message($0, endedAt: nil, detail: "") }
        return message
    }

    // MARK: - Conversions

    private static func count(_ reservation: Reservation, into live: inout [String: LiveState], sign: Int) {
        switch reservation.state {
        case .held:
            live[reservation.destinationID, default: LiveState()].held += sign
        case .accepted:
            if sign > 0 {
                live[reservation.destinationID, default: LiveState()].accepted.append(
                    reservation.acceptedAt ?? .distantPast
                )
            } else if let index = live[reservation.destinationID]?.accepted.firstIndex(
                of: reservation.acceptedAt ?? .distantPast
            ) {
                live[reservation.destinationID]?.accepted.remove(at: index)
            }
        default:
            break
        }
    }

    package static func handoff(_ request: Baton_Routing_V1_RouteRequest) -> Handoff {
        Handoff(
            callID: request.callID,
            handoffID: request.handoffID,
            category: request.category,
            skills: request.skills,
            urgent: request.priority == .urgent
        )
    }

    static func request(_ handoff: Handoff) -> Baton_Routing_V1_RouteRequest {
        var request = Baton_Routing_V1_RouteRequest()
        request.callID = handoff.callID
        request.handoffID = handoff.handoffID
        request.category = handoff.category
        request.skills = handoff.skills
        request.priority = handoff.urgent ? .urgent : .normal
        return request
    }

    static func message(_ reservation: Reservation, endedAt: Date?, detail: String) -> Baton_Routing_V1_Reservation {
        var message = Baton_Routing_V1_Reservation()
        message.id = reservation.id
        message.handoffID = reservation.handoff.handoffID
        message.callID = reservation.handoff.callID
        message.destinationID = reservation.destinationID
        message.state = reservation.state
        message.createdAtUnixMs = Self.milliseconds(reservation.createdAt)
        message.expiresAtUnixMs = Self.milliseconds(reservation.expiresAt)
        message.endedAtUnixMs = endedAt.map(Self.milliseconds) ?? 0
        message.detail = detail
        return message
    }

    static func problem(_ problem: ConfigProblem) -> Baton_Routing_V1_Problem {
        var message = Baton_Routing_V1_Problem()
        message.file = problem.file
        message.line = UInt32(problem.line)
        message.column = UInt32(problem.column)
        message.message = problem.message
        return message
    }

    private static func bytes(_ value: Data?) -> [UInt8] {
        value.map { [UInt8]($0) } ?? []
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
