import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes whole lines straight to standard output or error: unbuffered, so that a line reaches a pipe as soon as
/// it is written, and never interleaved with another line of this process.
public enum StandardStream {
    private static let lock = NIOLock()

    /// Writes `text` and a newline to `descriptor` (1, standard output, by default).
    public static func writeLine(_ text: String, to descriptor: Int32 = 1) {
        let bytes = Array((text + "\n").utf8)
        self.lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard written > 0 else {
                    return
                }
                offset += written
            }
        }
    }
}
