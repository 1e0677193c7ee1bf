import BatonTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The C client in Clients/c, written from docs/PROTOCOL.md with protobuf-c, against a real Swift server: the proof that
/// an integrator needs nothing of our Swift code.
@Suite("C client")
struct CClientTests {
    /// Builds Clients/c with make into a fresh directory and returns the path of baton-health.
    static func buildBatonHealth(into directory: TemporaryDirectory) async throws -> String {
        let repository = ServiceProcess.repositoryDirectory
        let make = try await ServiceProcess.run(
            path: "/usr/bin/make",
            arguments: ["-C", repository + "/Clients/c", "BUILD=" + directory.appending("c-build")],
            in: directory,
            workingDirectory: repository,
            within: .seconds(120)
        )
        guard make.status == 0 else {
            throw TestKitError("make failed (\(String(describing: make.status))): \(make.output)")
        }
        return directory.appending("c-build/baton-health")
    }

    @Test("baton-health reports SERVING from a running service, and fails with a reason otherwise")
    func healthFromC() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let batonHealth = try await Self.buildBatonHealth(into: directory)
        let service = try ServiceProcess.start(
            "context-assembler",
            workingDirectory: directory.path,
            logPath: directory.appending("service.log")
        )
        defer { service.stop() }
        let socket = directory.appending("var/run/context-assembler.sock")
        try await service.waitUntilServing(socketPath: socket)

        let serving = try await ServiceProcess.run(path: batonHealth, arguments: [socket], in: directory)
        #expect(serving.status == 0)
        #expect(serving.output == "SERVING\n")

        let unknown = try await ServiceProcess.run(
            path: batonHealth,
            arguments: [socket, "baton.nothing.v1.Nothing"],
            in: directory
        )
        #expect(unknown.status == 2)
        #expect(unknown.output.contains("NOT_FOUND: service 'baton.nothing.v1.Nothing' is not known to this process"))

        service.signal(SIGTERM)
        #expect(await service.waitForExit() == 0)
        let down = try await ServiceProcess.run(path: batonHealth, arguments: [socket], in: directory)
        #expect(down.status == 2)
        #expect(down.output.contains("cannot connect to"))
    }
}
