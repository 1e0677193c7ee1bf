import BatonRuntime

#if canImport(Glibc)
import Glibc
#endif

#if BATON_FUZZING
/// libFuzzer's driver, which runs the fuzzing loop over `LLVMFuzzerTestOneInput`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// One input, through the harness `BATON_FUZZ_HARNESS` names (checked at start by `BatonFuzz_main`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let harness = getenv("BATON_FUZZ_HARNESS").flatMap { Harness(rawValue: String(cString: $0)) }
    harness?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// The entry point SwiftPM links every executable to (`main` is defined as `<Module>_main`), in place of
/// libFuzzer's own `main`: it checks the harness's name, then hands over to libFuzzer's driver. scripts/fuzz.sh
/// builds this target with `-sanitize=fuzzer,address -DBATON_FUZZING`.
@_cdecl("BatonFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    guard getenv("BATON_FUZZ_HARNESS").flatMap({ Harness(rawValue: String(cString: $0)) }) != nil else {
        let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
        StandardStream.writeLine("baton-fuzz: set BATON_FUZZ_HARNESS to one of \(names)", to: 2)
        return 2
    }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOneInput)
}
#else
/// Without the fuzzer: replays files through a harness, `baton-fuzz HARNESS FILE...`, as a regression check of a
/// corpus or of a crash the fuzzer found.
@main
struct Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let harness = Harness(rawValue: name) else {
            let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
            StandardStream.writeLine("usage: baton-fuzz HARNESS FILE...   (HARNESS: \(names))", to: 2)
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            let bytes: [UInt8]
            do {
                bytes = try TextFile.bytes(path)
            } catch {
                StandardStream.writeLine("baton-fuzz: \(error)", to: 2)
                exit(2)
            }
            harness.run(bytes)
            count += 1
        }
        print("baton-fuzz: \(count) inputs through \(harness.rawValue), none crashed")
    }
}
#endif
