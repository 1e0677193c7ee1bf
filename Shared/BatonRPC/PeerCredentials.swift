#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who is on the other end of a Unix socket, as the kernel reports it (`SO_PEERCRED`).
public struct PeerCredentials: Hashable, Sendable, CustomStringConvertible {
    /// The peer's process id when it connected.
    public let pid: Int32
    /// The peer's effective user id.
    public let uid: UInt32
    /// The peer's effective group id.
    public let gid: UInt32

    /// Credentials as read from the socket.
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String {
        "pid \(self.pid) uid \(self.uid) gid \(self.gid)"
    }
}

/// Which peers a server lets in (docs/PROTOCOL.md, "Transport"): its own uid, root, and members of one optional group.
public struct PeerPolicy: Hashable, Sendable {
    /// The server's own effective uid.
    public let serverUID: UInt32
    /// The group named by `BATON_SOCKET_GROUP`, whose members may also connect.
    public let allowedGroup: UInt32?

    /// A policy for a server running as `serverUID`, letting in `allowedGroup` too when set.
    public init(serverUID: UInt32? = nil, allowedGroup: UInt32? = nil) {
        self.serverUID = serverUID ?? geteuid()
        self.allowedGroup = allowedGroup
    }

    /// Whether `peer` may talk to this server.
    ///
    /// `supplementaryGroups` is asked only when the peer is neither the server's user, root, nor primarily
    /// in the allowed group; it returns the groups the peer's user belongs to.
    public func allows(_ peer: PeerCredentials, supplementaryGroups: (UInt32) -> [UInt32] = Self.groups(ofUID:)) -> Bool
    {
        if peer.uid == self.serverUID || peer.uid == 0 {
            return true
        }
        guard let group = self.allowedGroup else {
            return false
        }
        return peer.gid == group || supplementaryGroups(peer.uid).contains(group)
    }

    /// The groups the user `uid` belongs to according to the system's user database.
    public static func groups(ofUID uid: UInt32) -> [UInt32] {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else {
            return []
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, entry.pointee.pw_gid, &groups, &count) == -1 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, entry.pointee.pw_gid, &groups, &count) != -1 else {
                return []
            }
        }
        return Array(groups.prefix(Int(count)))
    }
}
