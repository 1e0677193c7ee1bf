public import GRDB
import GRDBSQLite

/// A value bound to a statement by ``GRDB/Database/run(_:_:)``.
public enum SQLiteValue: Sendable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

extension Database {
    /// Runs the statement `sql`, prepared once per connection and cached, with `arguments` bound through SQLite's
    /// C API; returns the first column of its first row, as an integer, when it returns one.
    ///
    /// For the statements of a hot path, inside a transaction: GRDB's `execute(arguments:)` converts each argument
    /// to a `DatabaseValue` and binds it in a closure of its own, which for the router's decisions costs as much as
    /// SQLite's own work. This skips GRDB's bookkeeping around a statement, which serves observers of changes
    /// (Baton has none), statements that begin or end transactions, and schema changes; transactions still end
    /// through GRDB, which sees them through SQLite's hooks, so `afterNextTransaction` holds.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLiteValue]) throws -> Int64? {
        let statement = try self.cachedStatement(sql: sql).sqliteStatement
        defer { sqlite3_reset(statement) }
        var code = sqlite3_reset(statement)
        for (index, argument) in arguments.enumerated() where code == SQLITE_OK {
            let position = Int32(index + 1)
            switch argument {
            case .integer(let value):
                code = sqlite3_bind_int64(statement, position, value)
            case .text(var value):
                code = value.withUTF8 { utf8 in
                    // SQLite takes a null pointer as NULL: an empty string gets a pointer to nothing.
                    guard let base = utf8.baseAddress else {
                        return sqlite3_bind_text(statement, position, "", 0, transient)
                    }
                    return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                        sqlite3_bind_text(statement, position, $0, Int32(utf8.count), transient)
                    }
                }
            case .blob(let value):
                code = value.withUnsafeBytes {
                    // An empty blob has no base address; SQLite takes a null pointer as NULL, so bind a zero blob.
                    $0.baseAddress == nil
                        ? sqlite3_bind_zeroblob(statement, position, 0)
                        : sqlite3_bind_blob(statement, position, $0.baseAddress, Int32($0.count), transient)
                }
            case .null:
                code = sqlite3_bind_null(statement, position)
            }
        }
        var first: Int64?
        while code == SQLITE_OK || code == SQLITE_ROW {
            code = sqlite3_step(statement)
            if code == SQLITE_ROW, first == nil {
                first = sqlite3_column_int64(statement, 0)
            }
        }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: self.lastErrorMessage, sql: sql)
        }
        return first
    }
}

/// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
