import BatonRuntime
import BatonStore
import Foundation
import GRDB
import Synchronization

/// The signed-in sessions, in `desk.sqlite` under the data directory, so that a desk that restarts (or is killed)
/// keeps its agents signed in: their pages reconnect with the cookie they hold, without signing in again.
///
/// A session is 256 random bits, sent to the browser as an HttpOnly, SameSite=Strict cookie. It lasts a shift
/// (``lifetime``) and ends when the agent signs out, or when the agent is no longer in `agents.yaml`.
///
/// Every open session is also held in memory, so that a request (and a WebSocket upgrade, which is checked on the
/// event loop) is authenticated without waiting for the database.
final class Sessions: Sendable {
    private let store: Store
    private let open: Mutex<[String: (agent: String, expiresAt: Int64)]>

    /// How long a session lasts after sign-in.
    static let lifetime: Int64 = 12 * 3600 * 1000

    /// The cookie's name.
    static let cookie = "baton_session"

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        token TEXT PRIMARY KEY,
                        agent_id TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    """
            )
        }
        return migrator
    }()

    init(dataDirectory: String) throws {
        let path = (dataDirectory as NSString).appendingPathComponent("desk.sqlite")
        self.store = try Store(path: path, migrator: Self.migrator)
        let now = Timestamp.nowUnixMs()
        let rows = try self.store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT token, agent_id, expires_at FROM sessions WHERE expires_at > ?",
                arguments: [now]
            )
        }
        self.open = Mutex(
            Dictionary(
                uniqueKeysWithValues: rows.map { ($0["token"], (agent: $0["agent_id"], expiresAt: $0["expires_at"])) }
            )
        )
    }

    /// A new session for `agent`; its token is the cookie's value.
    func open(agent: String, now: Int64) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
        try await self.store.write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE expires_at <= ?", arguments: [now])
            try db.execute(
                sql: "INSERT INTO sessions (token, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [token, agent, now, now + Self.lifetime]
            )
        }
        self.open.withLock { open in
            open = open.filter { $0.value.expiresAt > now }
            open[token] = (agent, now + Self.lifetime)
        }
        return token
    }

    /// The agent id of an open session; nil for an unknown or expired token.
    func agent(token: String, now: Int64) -> String? {
        self.open.withLock { open in
            open[token].flatMap { $0.expiresAt > now ? $0.agent : nil }
        }
    }

    /// Ends a session (signing out).
    func close(token: String) async throws {
        _ = self.open.withLock { $0.removeValue(forKey: token) }
        try await self.store.write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE token = ?", arguments: [token])
        }
    }
}
