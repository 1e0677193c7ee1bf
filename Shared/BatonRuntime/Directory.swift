#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Lists directories without Foundation.
public enum Directory {
    /// The names in the directory at `path` (without `.` and `..`), sorted; throws ``ConfigurationError`` naming
    /// the path (as `what`, "the workflows directory", when given) and the reason.
    public static func entries(_ path: String, what: String? = nil) throws(ConfigurationError) -> [String] {
        guard let handle = opendir(path) else {
            let name = what.map { "\($0) '\(path)'" } ?? "'\(path)'"
            throw ConfigurationError("cannot read \(name): \(String(cString: strerror(errno)))")
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." {
                names.append(name)
            }
        }
        return names.sorted()
    }
}
