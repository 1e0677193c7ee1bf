import ArgumentParser

/// `router benchmark`: decisions per second with 50 destinations, in process and over the socket.
struct RouterBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Measure route decisions per second (in process and over the socket); run by hand, not by the tests."
    )

    func run() async throws {
        throw ValidationError("not built yet")
    }
}
