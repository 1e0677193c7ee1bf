import BatonRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory under /tmp for one test's sockets and data, removed with everything in it by ``remove()``.
///
/// Short on purpose: a Unix socket path holds at most 107 bytes.
public struct TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates `/tmp/baton-XXXXXX`.
    public init() throws {
        var template = Array("/tmp/baton-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw TestKitError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        self.path = String(cString: created)
    }

    /// The path of `name` inside this directory.
    public func appending(_ name: String) -> String {
        self.path + "/" + name
    }

    /// Removes the directory and everything in it.
    public func remove() {
        removeTree(self.path)
    }
}

private func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else {
        return
    }
    if info.st_mode & S_IFMT == S_IFDIR {
        for name in (try? Directory.entries(path)) ?? [] {
            removeTree(path + "/" + name)
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// A test helper failed; the message says how.
public struct TestKitError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String

    /// An error described in one sentence.
    public init(_ description: String) {
        self.description = description
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `timeout`; returns whether it held.
public func eventually(
    within timeout: Duration = .seconds(60),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() {
            return true
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
