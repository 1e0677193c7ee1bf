import Dispatch
public import GRDB
import Synchronization

/// A process's SQLite database: WAL mode, `synchronous=FULL`, migrated on open, and written through a group
/// commit.
///
/// A write is acknowledged only after its transaction is committed and synced. Writes that arrive while a commit
/// is in progress wait and then share the next transaction, each in a savepoint of its own, so that one write's
/// error fails only that write and durability costs one sync per group rather than one per write.
public final class Store: Sendable {
    /// For reads; they never wait for the writer.
    public let pool: DatabasePool
    public let path: String

    private struct Pending: Sendable {
        var writes: [Write] = []
        var committing = false
    }

    /// One write: runs in its savepoint, and answers its caller once the group is committed (or has failed).
    private struct Write: Sendable {
        /// Runs the write; returns how to answer its caller once the commit's outcome is known.
        let run: @Sendable (Database) -> @Sendable (_ commitError: (any Error)?) -> Void
        /// Answers the caller of a write that never ran, because its group failed before reaching it.
        let fail: @Sendable (any Error) -> Void
    }

    private let pending = Mutex(Pending())
    private let committer = DispatchQueue(label: "baton.store.commit")

    /// Opens (creating when needed) the database at `path` and applies `migrator`'s migrations.
    public init(path: String, migrator: DatabaseMigrator) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        self.pool = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        // GRDB opens WAL databases with synchronous=NORMAL, which can lose the last commits on power loss: a
        // write acknowledged here must survive, so FULL, read back to be sure.
        let synchronous = try self.pool.writeWithoutTransaction { db -> Int in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
        }
        guard synchronous == 2 else {
            throw StoreError("\(path): PRAGMA synchronous reads \(synchronous) after setting FULL (2)")
        }
        try migrator.migrate(self.pool)
    }

    /// Runs `body` in the next group commit and returns its result once that commit is durable. An error thrown
    /// by `body` rolls back only `body`'s changes.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let write = Write(
                run: { db in
                    let result: Result<T, any Error>
                    do {
                        result = .success(try Self.inSavepoint(db) { try body(db) })
                    } catch {
                        result = .failure(error)
                    }
                    return { commitError in
                        if let commitError {
                            continuation.resume(throwing: commitError)
                        } else {
                            continuation.resume(with: result)
                        }
                    }
                },
                fail: { continuation.resume(throwing: $0) }
            )
            let start = self.pending.withLock { pending in
                pending.writes.append(write)
                defer { pending.committing = true }
                return !pending.committing
            }
            if start {
                self.committer.async { self.commitPending() }
            }
        }
    }

    /// Runs `body` in a savepoint, rolled back if `body` throws. GRDB's `inSavepoint` prepares its SAVEPOINT and
    /// RELEASE statements on every call; a group commit runs one savepoint per write, so these are cached.
    private static func inSavepoint<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "SAVEPOINT write").execute()
        do {
            let value = try body()
            try db.cachedStatement(sql: "RELEASE SAVEPOINT write").execute()
            return value
        } catch {
            // Undo the write's changes and leave its savepoint; the rest of the group stands.
            try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT write").execute()
            try db.cachedStatement(sql: "RELEASE SAVEPOINT write").execute()
            throw error
        }
    }

    /// Commits every waiting write, group after group, until none waits.
    private func commitPending() {
        while true {
            let writes = self.pending.withLock { pending in
                defer { pending.writes = [] }
                pending.committing = !pending.writes.isEmpty
                return pending.writes
            }
            if writes.isEmpty {
                return
            }
            var answers: [@Sendable ((any Error)?) -> Void] = []
            answers.reserveCapacity(writes.count)
            do {
                try self.pool.writeWithoutTransaction { db in
                    try db.inTransaction {
                        for write in writes {
                            answers.append(write.run(db))
                        }
                        return .commit
                    }
                }
                answers.forEach { $0(nil) }
            } catch {
                // The commit failed: nothing of the group is stored, and every writer hears so.
                answers.forEach { $0(error) }
                writes.dropFirst(answers.count).forEach { $0.fail(error) }
            }
        }
    }
}

/// The store could not be opened as Baton needs it.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
