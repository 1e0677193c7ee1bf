#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Copies of configuration files as they last validated, kept in the process's data directory.
///
/// A file that no longer validates keeps serving its previous version while the process runs; these copies make
/// that survive a restart too, so that a process restarted with a broken file serves what it served before (and
/// says so) instead of coming back without it. Each copy is written atomically (a temporary file, fsync, rename)
/// and named after the file's last path component.
public struct LastValidCopies: Sendable {
    /// The directory of the copies, for example `$BATON_DATA_DIR/gate-evaluator-last-valid`.
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Where the copy of `file` is kept.
    public func path(of file: String) -> String {
        self.directory + "/" + (file.split(separator: "/").last.map(String.init) ?? file)
    }

    /// The text of `file`'s copy, if there is one.
    public func text(of file: String) -> String? {
        try? TextFile.read(self.path(of: file))
    }

    /// Keeps `text` as `file`'s last valid version, unless the copy already holds it.
    public func save(_ text: String, of file: String) throws(ConfigurationError) {
        guard self.text(of: file) != text else {
            return
        }
        if mkdir(self.directory, 0o700) != 0 && errno != EEXIST {
            throw ConfigurationError("cannot create '\(self.directory)': \(String(cString: strerror(errno)))")
        }
        let path = self.path(of: file)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError("cannot write '\(temporary)': \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw ConfigurationError("cannot write '\(temporary)': \(reason)")
            }
            written += count
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(temporary, path) == 0 else {
            throw ConfigurationError("cannot keep '\(path)': \(String(cString: strerror(errno)))")
        }
        let directory = open(self.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// Forgets `file`'s copy: the file was removed, so its configuration goes with it.
    public func remove(of file: String) {
        unlink(self.path(of: file))
    }

    /// The names of the kept copies.
    public func names() -> [String] {
        ((try? Directory.entries(self.directory)) ?? []).filter { !$0.hasSuffix(".tmp") }
    }
}
