import Dispatch
public import GRDB
import Synchronization

/// A process's SQLite database: WAL mode, `synchronous=FULL`, migrated on open, and written through a group
/// commit.
///
/// A write is acknowledged only after its transaction is committed and synced. Writes that arrive while a commit
/// is in progress wait and then share the next transaction, so that durability costs one sync per group rather
/// than one per write. One write's error fails only that write: it leaves no trace, and the others are stored.
/// A ``Checkpointer`` copies the log into the database file in the background.
public final class Store: Sendable {
    /// For reads; they never wait for the writer.
    public let pool: DatabasePool
    public let path: String

    private struct Pending: Sendable {
        var writes: [Write] = []
        var committing = false
    }

    /// One write, and how to answer its caller once its group is committed (or has failed).
    private struct Write: Sendable {
        /// Runs the write, throwing its error; returns how to answer its caller once the commit's outcome is known.
        let run: @Sendable (Database) throws -> @Sendable (_ commitError: (any Error)?) -> Void
        /// Answers the caller of a write that failed, or never ran because its group failed.
        let fail: @Sendable (any Error) -> Void
    }

    private let pending = Mutex(Pending())
    private let committer = DispatchQueue(label: "baton.store.commit")
    /// Called by the writer's connection after each commit.
    private let checkpointer: Checkpointer

    /// Opens (creating when needed) the database at `path` and applies `migrator`'s migrations. The log is
    /// checkpointed in the background once it holds `checkpointPages` pages (see ``Checkpointer``).
    public init(path: String, migrator: DatabaseMigrator, checkpointPages: Int32 = 8000) throws {
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
        precondition(checkpointPages > 0, "checkpointPages must be positive")
        let checkpointer = try Checkpointer(path: path, pages: checkpointPages)
        self.pool.writeWithoutTransaction { checkpointer.install(on: $0) }
        self.checkpointer = checkpointer
    }

    deinit {
        self.pool.writeWithoutTransaction { Checkpointer.uninstall(from: $0) }
    }

    /// Runs `body` in the next group commit and returns its result once that commit is durable. An error thrown
    /// by `body` undoes all of `body`'s changes and fails only this write.
    ///
    /// `body` must only work on the database: it may run more than once, when another write of its group fails
    /// and the group runs again without it.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let write = Write(
                run: { db in
                    let value = try body(db)
                    return { commitError in
                        if let commitError {
                            continuation.resume(throwing: commitError)
                        } else {
                            continuation.resume(returning: value)
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
            self.commit(writes)
        }
    }

    /// Commits `writes` in one transaction.
    ///
    /// They run one after the other with no savepoint each: a savepoint costs two statements per write, and writes
    /// rarely fail. When one does, the transaction is rolled back, that write hears its error, and the others run
    /// again without it, so each stored write saw exactly the writes stored before it.
    private func commit(_ writes: [Write]) {
        var remaining = writes
        while !remaining.isEmpty {
            var answers: [@Sendable ((any Error)?) -> Void] = []
            answers.reserveCapacity(remaining.count)
            var failed: (index: Int, error: any Error)?
            do {
                try self.pool.writeWithoutTransaction { db in
                    try db.inTransaction {
                        for (index, write) in remaining.enumerated() {
                            do {
                                answers.append(try write.run(db))
                            } catch {
                                failed = (index, error)
                                return .rollback
                            }
                        }
                        return .commit
                    }
                }
            } catch {
                // The transaction itself failed: nothing of the group is stored, and every writer hears so.
                answers.forEach { $0(error) }
                remaining.dropFirst(answers.count).forEach { $0.fail(error) }
                return
            }
            guard let failed else {
                answers.forEach { $0(nil) }
                return
            }
            remaining.remove(at: failed.index).fail(failed.error)
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
