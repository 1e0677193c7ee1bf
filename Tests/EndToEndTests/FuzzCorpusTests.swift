import BatonRuntime
import BatonTestKit
import Testing

/// The fuzz harnesses' seed corpus, replayed by `baton-fuzz` as built for the tests: every seed goes through its
/// harness without a crash (the fuzzer itself runs in scripts/fuzz.sh).
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    @Test(
        "every seed input goes through its harness",
        arguments: ["frames", "workflows", "destinations", "procfile", "dotenv", "supervisor-yaml", "json"]
    )
    func replay(harness: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let corpus = ServiceProcess.repositoryDirectory + "/Fuzz/corpus/" + harness
        let seeds = try Directory.entries(corpus, what: "the corpus").map { corpus + "/" + $0 }
        #expect(!seeds.isEmpty)
        let result = try await ServiceProcess.run(
            path: ServiceProcess.productsDirectory + "/baton-fuzz",
            arguments: [harness] + seeds,
            in: directory
        )
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(seeds.count) inputs through \(harness), none crashed"))
    }
}
