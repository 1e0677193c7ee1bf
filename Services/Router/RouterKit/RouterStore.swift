import BatonProto
import BatonStore
import Foundation
import GRDB
import SwiftProtobuf

/// What the router keeps in `router.sqlite`, and the SQL that reads and writes it: every decision (its reply, with
/// the reasons stored once per distinct set) and every reservation with its state.
enum RouterStore {
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

    /// The reservations that were open when the store was last written, as they were.
    static func openReservations(in db: Database) throws -> [Reservation] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT r.*, COALESCE(d.reply, r.reply) AS decision_reply, s.reasons AS decision_reasons, d.attempt
                FROM reservations r
                LEFT JOIN decisions d ON d.id = r.decision_id
                LEFT JOIN reason_sets s ON s.id = d.reason_set
                WHERE r.state IN (1, 2)
                """
        )
        return try rows.map { row in
            let request = try Baton_Routing_V1_RouteRequest(serializedBytes: Self.bytes(row["request"]))
            var decision = try Baton_Routing_V1_RouteReply(
                serializedBytes: Self.bytes(row["decision_reply"]) + Self.bytes(row["decision_reasons"])
            )
            let reasons = decision.reasons
            decision.reasons = []
            let excluded: String = row["excluded"]
            let record = Reservation.Record(
                id: row["id"],
                handoff: RouterCore.handoff(request),
                destinationID: row["destination_id"],
                createdAt: RouterCore.date(row["created_at"]),
                expiresAt: RouterCore.date(row["expires_at"]),
                excluded: Set(excluded.split(separator: ",").map(String.init)),
                decision: decision,
                reasons: reasons
            )
            return Reservation(
                record,
                state: .init(rawValue: row["state"]) ?? .held,
                acceptedAt: (row["accepted_at"] as Int64?).map(RouterCore.date),
                attempt: row["attempt"] ?? decision.attempt,
                pending: nil
            )
        }
    }

    /// Stores a decision, encoded (`head`, without its reasons and attempt) with its reasons stored once, and the
    /// reservation it made; returns the decision's attempt, one more than the handoff's last.
    ///
    /// Reasons shared with earlier decisions are stored once, by the first write that needs them (see
    /// ``Reasons/inserted(_:in:)``).
    static func insertDecision(
        _ head: [UInt8],
        of reply: Baton_Routing_V1_RouteReply,
        reasons: Reasons,
        reservation: (Reservation, request: [UInt8])?,
        in db: Database
    ) throws -> UInt32 {
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
                .blob(head), reasonsRow.map(SQLiteValue.integer) ?? .null,
            ]
        )
        if let (reservation, request) = reservation {
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
                    .integer(RouterCore.milliseconds(reservation.createdAt)),
                    .integer(RouterCore.milliseconds(reservation.expiresAt)), .blob(request),
                    .text(reservation.excluded.sorted().joined(separator: ",")),
                    .integer(db.lastInsertedRowID),
                ]
            )
        }
        return attempt
    }

    /// Writes a reservation's state, and when it ended and why, over its row.
    static func update(_ reservation: Reservation, endedAt: Date? = nil, detail: String = "", in db: Database) throws {
        try db.run(
            "UPDATE reservations SET state = ?, accepted_at = ?, ended_at = ?, detail = ? WHERE id = ?",
            [
                .integer(Int64(reservation.state.rawValue)),
                reservation.acceptedAt.map { .integer(RouterCore.milliseconds($0)) } ?? .null,
                endedAt.map { .integer(RouterCore.milliseconds($0)) } ?? .null, .text(detail), .text(reservation.id),
            ]
        )
    }

    /// The stored state of reservation `id`, or nil when there is none.
    static func state(ofReservation id: String, in db: Database) throws -> Baton_Routing_V1_Reservation.State? {
        try Int.fetchOne(db, sql: "SELECT state FROM reservations WHERE id = ?", arguments: [id]).map {
            .init(rawValue: $0) ?? .unspecified
        }
    }

    /// Every decision for `handoffID`, in order, and the reservations they made.
    static func explain(_ handoffID: String, in db: Database) throws -> Baton_Routing_V1_ExplainReply {
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

    /// `encoded`, a RouteReply without its attempt, with the attempt field added at the end. Protobuf decoders take
    /// fields in any order, so the result decodes as the reply with that attempt, as if encoded whole.
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

    private static func bytes(_ value: Data?) -> [UInt8] {
        value.map { [UInt8]($0) } ?? []
    }
}
