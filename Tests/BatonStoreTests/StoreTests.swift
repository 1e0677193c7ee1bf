import BatonStore
import BatonTestKit
import GRDB
import Testing

struct Failure: Error {}

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
}
