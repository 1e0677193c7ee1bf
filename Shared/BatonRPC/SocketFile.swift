#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The files docs/PROTOCOL.md's "Transport" section governs: the run directory and each process's socket.
public enum SocketFile {
    /// The longest path a Unix socket address holds (`sun_path` less its terminating zero).
    public static let maxPathLength = 107

    /// Creates `path` and its missing parents. A directory this creates gets mode 0700, or 0710 with its group
    /// set to `group` so that the group's members can reach the sockets inside; an existing one is left as it is.
    public static func createDirectory(_ path: String, group: UInt32? = nil) throws(SocketFileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            var info = stat()
            if stat(current, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw SocketFileError("'\(current)' exists and is not a directory")
                }
                continue
            }
            guard mkdir(current, 0o700) == 0 || errno == EEXIST else {
                throw SocketFileError("cannot create directory '\(current)': \(Self.lastError())")
            }
            if let group {
                guard chown(current, uid_t.max, group) == 0, chmod(current, 0o710) == 0 else {
                    throw SocketFileError("cannot give directory '\(current)' to group \(group): \(Self.lastError())")
                }
            }
        }
    }

    /// Makes `path` free to bind: a stale socket file (nobody answers on it) is removed; a socket a live process
    /// answers on, or a file that is not a socket, is refused.
    /// - Returns: true when a stale socket file was removed.
    @discardableResult
    public static func claim(_ path: String) throws(SocketFileError) -> Bool {
        guard path.utf8.count <= Self.maxPathLength else {
            throw SocketFileError(
                "socket path '\(path)' is \(path.utf8.count) bytes; Unix socket paths hold at most \(Self.maxPathLength)"
            )
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            return false
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw SocketFileError("'\(path)' exists and is not a socket; remove it or choose another run directory")
        }
        if Self.answers(path) {
            throw SocketFileError("another process is already serving on '\(path)'")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw SocketFileError("cannot remove stale socket file '\(path)': \(Self.lastError())")
        }
        return true
    }

    /// Sets a freshly bound socket's mode: 0600, or 0660 with its group set to `group`.
    public static func restrict(_ path: String, group: UInt32?) throws(SocketFileError) {
        if let group {
            guard chown(path, uid_t.max, group) == 0 else {
                throw SocketFileError("cannot give socket '\(path)' to group \(group): \(Self.lastError())")
            }
        }
        guard chmod(path, group == nil ? 0o600 : 0o660) == 0 else {
            throw SocketFileError("cannot set the mode of socket '\(path)': \(Self.lastError())")
        }
    }

    /// Which file a path names: its device and inode.
    public struct Identity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// The identity of the file at `path` now, or nil when there is none.
    public static func identity(of path: String) -> Identity? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            return nil
        }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Whether a process accepts connections on the socket at `path`.
    public static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            return false
        }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(Self.maxPathLength))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    static func lastError() -> String {
        String(cString: strerror(errno))
    }
}

/// A socket file or directory could not be prepared; the message names the path and the reason.
public struct SocketFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, naming the path.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
