#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads small files (a Procfile, a `.env`, a log, a fuzzer's input) without Foundation.
public enum TextFile {
    /// The whole file at `path` as UTF-8 text; throws ``ConfigurationError`` naming the path and the reason.
    public static func read(_ path: String) throws(ConfigurationError) -> String {
        String(decoding: try Self.bytes(path), as: UTF8.self)
    }

    /// The whole file at `path`, as it is; throws ``ConfigurationError`` naming the path and the reason.
    public static func bytes(_ path: String) throws(ConfigurationError) -> [UInt8] {
        guard let file = fopen(path, "r") else {
            throw ConfigurationError("cannot read '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            guard count > 0 else {
                break
            }
            bytes += chunk.prefix(count)
        }
        return bytes
    }
}
