import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

/// Copies a store's write-ahead log into its database file on a connection and thread of its own, so that commits
/// do not wait for it.
///
/// SQLite checkpoints by itself inside the commit that takes the log past 1,000 pages, and every write queued
/// behind that commit waits for the copy. Installed as the writer's WAL hook (which turns SQLite's own off), this
/// starts a passive checkpoint on its own connection instead, once the log holds `pages` pages. The default is
/// 8,000 (32 MB): a page written again and again between two checkpoints (the leaf of an index that every decision
/// touches) is copied once per checkpoint, so fewer checkpoints copy fewer pages in all.
///
/// A passive checkpoint copies what the log held when it began. Under steady writes it ends a little behind, so
/// the log is never wholly copied and SQLite never starts it over from the beginning: it would grow for as long as
/// the writes go on. Past four times `pages`, the hook therefore checkpoints inside the commit, as SQLite would:
/// the background has copied nearly all of the log, so this is short, and the next transaction starts the log
/// over. The log file keeps the size it reached (SQLite reuses it from the beginning).
final class Checkpointer: Sendable {
    let pages: Int32
    private let connection: DatabaseQueue
    private let queue = DispatchQueue(label: "baton.store.checkpoint")
    private let running = Mutex(false)

    init(path: String, pages: Int32) throws {
        self.pages = pages
        self.connection = try DatabaseQueue(path: path)
    }

    /// Installs this as the WAL hook of `db`, the writer's connection.
    func install(on db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Removes the hook from `db`, which must be the connection it was installed on.
    static func uninstall(from db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, nil, nil)
    }

    /// Called by SQLite on the writer's thread after each commit, with the pages now in the log.
    fileprivate func committed(pages: Int32, writer: OpaquePointer?) {
        if pages >= 4 * self.pages {
            // Passive: it neither waits for nor blocks readers, and fails at once while the background one runs.
            sqlite3_wal_checkpoint_v2(writer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            return
        }
        guard pages >= self.pages else {
            return
        }
        let start = self.running.withLock { running in
            defer { running = true }
            return !running
        }
        guard start else {
            return
        }
        self.queue.async {
            // A failed checkpoint loses nothing: the pages stay in the log, and the next commit past the threshold
            // starts another.
            _ = try? self.connection.writeWithoutTransaction { try $0.checkpoint(.passive) }
            self.running.withLock { $0 = false }
        }
    }
}

/// SQLite's WAL hook: a C function, given the ``Checkpointer`` as its context.
private let walHook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 =
    {
        context,
        writer,
        _,
        pages in
        if let context {
            Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue().committed(pages: pages, writer: writer)
        }
        return SQLITE_OK
    }
