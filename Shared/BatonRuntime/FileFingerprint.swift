#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What tells one version of a file from the next without reading it: its inode, size and modification time.
///
/// The time alone misses two writes within one tick of the file system's clock; a write that keeps the size, or a
/// file replaced by a rename, still changes the others.
public struct FileFingerprint: Equatable, Sendable {
    let inode: UInt64
    let size: Int64
    let modifiedNanoseconds: Int

    /// The fingerprint of the file at `path` now, or nil when it cannot be read.
    public init?(of path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return nil
        }
        self.inode = UInt64(info.st_ino)
        self.size = Int64(info.st_size)
        self.modifiedNanoseconds = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
    }
}
