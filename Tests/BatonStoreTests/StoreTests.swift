import BatonStore
import BatonTestKit
import Foundation
import GRDB
import Synchronization
import Testing

struct Failure: Error {}

/// Counts the transactions committed on the connection it observes.
final class CommitCounter: TransactionObserver, Sendable {
    private let count = Mutex(0)

    var commits: Int { self.count.withLock { $0 } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { self.count.withLock { $0 += 1 } }
    func databaseDidRollback(_ db: Database) {}
}

@Suite("Group commit")
struct StoreTests {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        }
        return migrator
    }()

    @Test("writes that share a commit each stand alone: one that fails leaves no trace, the others are stored")
    func failingWriteInGroup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.appending("test.sqlite"), migrator: Self.migrator)
        // Enough concurrent writes that they share commits; every fifth inserts a row and then fails, and every
        // seventh breaks a constraint after its insert.
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        try await store.write { db in
                            try db.execute(
                                sql: "INSERT INTO items (id, name) VALUES (?, ?)",
                                arguments: [index, "item-\(index)"]
                            )
                            if index % 5 == 0 {
                                throw Failure()
                            }
                            if index % 7 == 0 {
                                try db.execute(sql: "INSERT INTO items (name) VALUES ('item-0')")
                                try db.execute(sql: "INSERT INTO items (name) VALUES ('item-0')")
                            }
                        }
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        let stored = try await store.pool.read { db in try Int.fetchAll(db, sql: "SELECT id FROM items ORDER BY id") }
        let expected = (0..<200).filter { $0 % 5 != 0 && $0 % 7 != 0 }
        #expect(stored == expected)
        #expect(outcomes.filter(\.value).keys.sorted() == expected)
        // The store goes on: a later write is committed.
        try await store.write { db in try db.execute(sql: "INSERT INTO items (id, name) VALUES (1000, 'later')") }
        #expect(
            try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM items") } == expected
                .count + 1
        )
    }

    @Test("writes that arrive together share a commit: 400 concurrent writes take far fewer transactions")
    func writesShareCommits() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.appending("test.sqlite"), migrator: Self.migrator)
        let counter = CommitCounter()
        store.pool.add(transactionObserver: counter, extent: .databaseLifetime)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                group.addTask {
                    try await store.write { db in
                        try db.execute(sql: "INSERT INTO items (name) VALUES (?)", arguments: ["item-\(index)"])
                    }
                }
            }
            try await group.waitForAll()
        }
        let rows = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM items") }
        #expect(rows == 400)
        // One fsync'd commit per write would be 400 transactions; a commit takes every write that waited for it.
        #expect(counter.commits >= 1 && counter.commits <= 100, "\(counter.commits) commits for 400 writes")
    }

    @Test(
        "run binds each kind of value through SQLite's C API, answers a row's first column, and names the SQL it failed"
    )
    func run() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var migrator = Self.migrator
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE values_ (n INTEGER, t TEXT UNIQUE, b BLOB, z)")
        }
        let store = try Store(path: directory.appending("test.sqlite"), migrator: migrator)
        let insert = "INSERT INTO values_ (n, t, b, z) VALUES (?, ?, ?, ?)"
        try await store.write { db in
            #expect(try db.run(insert, [.integer(-7), .text("é ✓"), .blob([0, 1, 255]), .null]) == nil)
            try db.run(insert, [.integer(Int64.max), .text(""), .blob([]), .integer(3)])
            // A statement that returns rows answers the first column of the first.
            #expect(try db.run("SELECT n FROM values_ ORDER BY rowid", []) == -7)
        }
        let rows = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT n, t, b, z, typeof(b) AS kind FROM values_ ORDER BY rowid")
        }
        #expect(rows.map { $0["n"] as Int64 } == [-7, Int64.max])
        #expect(rows.map { $0["t"] as String } == ["é ✓", ""])
        #expect(rows.map { [UInt8]($0["b"] as Data) } == [[0, 1, 255], []])
        #expect(rows.map { $0["kind"] as String } == ["blob", "blob"])  // an empty blob is not NULL
        #expect(rows.map { $0["z"] as Int? } == [nil, 3])

        // A broken constraint fails that write with SQLite's message and the SQL; the statement serves again.
        await #expect {
            try await store.write { db in try db.run(insert, [.integer(1), .text("é ✓"), .null, .null]) }
        } throws: { error in
            let error = error as? DatabaseError
            return error?.resultCode == .SQLITE_CONSTRAINT && error?.sql == insert
                && error?.message?.contains("values_.t") == true
        }
        _ = try await store.write { db in try db.run(insert, [.integer(2), .text("new"), .null, .null]) }
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM values_") } == 3)
    }

    @Test("the log is checkpointed in the background: it stays bounded under writes, and the database file gets them")
    func checkpoints() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("test.sqlite")
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: "CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        }
        let store = try Store(path: path, migrator: migrator, checkpointPages: 50)
        // 400 rows of 4 KB (two pages each, with its overflow), 8 to a write: the log passes 50 pages again and again.
        for write in 0..<50 {
            _ = try await store.write { db in
                for row in 0..<8 {
                    try db.run(
                        "INSERT INTO blobs (id, data) VALUES (?, ?)",
                        [.integer(Int64(write * 8 + row)), .blob([UInt8](repeating: UInt8(row), count: 4096))]
                    )
                }
            }
        }
        // The log never held more than four times the threshold and one write's pages (each page a frame with a
        // 24-byte header, after the log's 32-byte header).
        #expect(try Self.size(path + "-wal") <= 32 + (4 * 50 + 40) * (4096 + 24))
        // Nothing but the checkpointer copies the log into the database file: it ends up holding every row.
        let deadline = ContinuousClock.now + .seconds(30)
        while try Self.size(path) < 400 * 4096, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try Self.size(path) >= 400 * 4096)
        #expect(try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") } == 400)
    }

    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
