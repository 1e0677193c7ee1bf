import BatonProto
import Foundation
import GRDB
import SwiftProtobuf

/// What the assembler keeps in `context.sqlite`: calls, their redacted events with the reply each got, handoffs
/// (each as its latest `Handoff` message), and the outbox of timeline events for the metrics collector, written in
/// the same transaction as the change that caused them.
enum ContextStore {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE calls (
                        id TEXT PRIMARY KEY,
                        workflow_id TEXT NOT NULL,
                        call BLOB NOT NULL,
                        declared_slots TEXT NOT NULL,
                        started_at INTEGER NOT NULL,
                        closed_at INTEGER
                    );
                    CREATE INDEX calls_open ON calls(started_at) WHERE closed_at IS NULL;
                    CREATE TABLE events (
                        call_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        recorded_at INTEGER NOT NULL,
                        event BLOB NOT NULL,
                        reply BLOB NOT NULL,
                        PRIMARY KEY (call_id, event_id)
                    ) WITHOUT ROWID;
                    CREATE INDEX events_in_order ON events(call_id, seq);
                    CREATE TABLE handoffs (
                        id TEXT PRIMARY KEY,
                        call_id TEXT NOT NULL,
                        token TEXT NOT NULL UNIQUE,
                        seq INTEGER NOT NULL,
                        handoff BLOB NOT NULL
                    );
                    CREATE INDEX handoffs_by_call ON handoffs(call_id, seq);
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        event BLOB NOT NULL
                    );
                    """
            )
        }
        return migrator
    }()

    static func insertCall(_ call: Baton_Context_V1_Call, declaredSlots: [String], in db: Database) throws {
        try db.execute(
            sql: "INSERT INTO calls (id, workflow_id, call, declared_slots, started_at) VALUES (?, ?, ?, ?, ?)",
            arguments: [
                call.callID, call.workflowID, try call.serializedData(),
                declaredSlots.joined(separator: "\n"), call.startedAtUnixMs,
            ]
        )
    }

    static func closeCall(_ call: Baton_Context_V1_Call, in db: Database) throws {
        try db.execute(
            sql: "UPDATE calls SET call = ?, closed_at = ? WHERE id = ?",
            arguments: [try call.serializedData(), call.closedAtUnixMs, call.callID]
        )
    }

    static func insertEvent(
        _ event: Baton_Context_V1_Event,
        seq: Int,
        reply: Baton_Context_V1_RecordReply,
        recordedAt: Int64,
        in db: Database
    ) throws {
        try db.cachedStatement(
            sql: "INSERT INTO events (call_id, event_id, seq, recorded_at, event, reply) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(
            arguments: [
                event.callID, event.eventID, seq, recordedAt, try event.serializedData(),
                try reply.serializedData(),
            ]
        )
    }

    static func reply(call: String, event: String, in db: Database) throws -> Baton_Context_V1_RecordReply? {
        guard
            let data = try Data.fetchOne(
                db,
                sql: "SELECT reply FROM events WHERE call_id = ? AND event_id = ?",
                arguments: [call, event]
            )
        else {
            return nil
        }
        return try Baton_Context_V1_RecordReply(serializedBytes: data)
    }

    static func saveHandoff(_ handoff: Baton_Context_V1_Handoff, seq: Int, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO handoffs (id, call_id, token, seq, handoff) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET handoff = excluded.handoff
                """
        ).execute(
            arguments: [
                handoff.handoffID, handoff.callID, handoff.plan.brief.token, seq,
                try handoff.serializedData(),
            ]
        )
    }

    static func enqueue(_ events: [Baton_Metrics_V1_Event], in db: Database) throws {
        for event in events {
            try db.cachedStatement(sql: "INSERT INTO outbox (event) VALUES (?)").execute(
                arguments: [try event.serializedData()]
            )
        }
    }

    /// The oldest `limit` outbox rows.
    static func outbox(limit: Int, in db: Database) throws -> [(id: Int64, event: Baton_Metrics_V1_Event)] {
        try Row.fetchAll(db, sql: "SELECT id, event FROM outbox ORDER BY id LIMIT ?", arguments: [limit]).map {
            (id: $0["id"], event: try Baton_Metrics_V1_Event(serializedBytes: $0["event"] as Data))
        }
    }

    static func deleteOutbox(through id: Int64, in db: Database) throws {
        try db.execute(sql: "DELETE FROM outbox WHERE id <= ?", arguments: [id])
    }

    static func handoff(id: String, in db: Database) throws -> Baton_Context_V1_Handoff? {
        try Data.fetchOne(db, sql: "SELECT handoff FROM handoffs WHERE id = ?", arguments: [id]).map {
            try Baton_Context_V1_Handoff(serializedBytes: $0)
        }
    }

    static func handoff(token: String, in db: Database) throws -> Baton_Context_V1_Handoff? {
        try Data.fetchOne(db, sql: "SELECT handoff FROM handoffs WHERE token = ?", arguments: [token]).map {
            try Baton_Context_V1_Handoff(serializedBytes: $0)
        }
    }

    static func handoffs(call: String, in db: Database) throws -> [Baton_Context_V1_Handoff] {
        try Data.fetchAll(
            db,
            sql: "SELECT handoff FROM handoffs WHERE call_id = ? ORDER BY seq",
            arguments: [call]
        ).map { try Baton_Context_V1_Handoff(serializedBytes: $0) }
    }

    /// The call as stored, with its events and handoffs.
    static func call(_ id: String, in db: Database) throws -> Baton_Context_V1_Call? {
        guard let data = try Data.fetchOne(db, sql: "SELECT call FROM calls WHERE id = ?", arguments: [id]) else {
            return nil
        }
        var call = try Baton_Context_V1_Call(serializedBytes: data)
        call.events = try Row.fetchAll(
            db,
            sql: "SELECT event, recorded_at FROM events WHERE call_id = ? ORDER BY seq",
            arguments: [id]
        ).map { row in
            var recorded = Baton_Context_V1_RecordedEvent()
            recorded.event = try Baton_Context_V1_Event(serializedBytes: row["event"] as Data)
            recorded.recordedAtUnixMs = row["recorded_at"]
            return recorded
        }
        call.handoffs = try Self.handoffs(call: id, in: db)
        return call
    }

    /// Every open call, rebuilt by applying its events in order, with its handoffs and its events' ids.
    static func openCalls(in db: Database) throws -> [(state: CallState, eventIDs: Set<String>)] {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT id, call, declared_slots FROM calls WHERE closed_at IS NULL ORDER BY started_at"
        )
        return try rows.map { row in
            let declared: String = row["declared_slots"]
            var state = CallState(
                call: try Baton_Context_V1_Call(serializedBytes: row["call"] as Data),
                declaredSlots: Set(declared.split(separator: "\n").map(String.init))
            )
            var ids: Set<String> = []
            let events = try Data.fetchCursor(
                db,
                sql: "SELECT event FROM events WHERE call_id = ? ORDER BY seq",
                arguments: [state.call.callID]
            )
            while let data = try events.next() {
                let event = try Baton_Context_V1_Event(serializedBytes: data)
                state.apply(event)
                ids.insert(event.eventID)
            }
            state.handoffs = try Self.handoffs(call: state.call.callID, in: db)
            state.firedGates = state.handoffs.map(\.plan.gateID).filter { !$0.isEmpty }
            return (state, ids)
        }
    }
}
