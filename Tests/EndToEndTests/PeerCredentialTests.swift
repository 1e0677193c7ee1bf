import BatonTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// docs/PROTOCOL.md's SO_PEERCRED rule, with real users: the C client runs as `nobody` through `setpriv`.
@Suite(
    "Peer credentials",
    .enabled(if: geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root and setpriv")
)
struct PeerCredentialTests {
    static let nobody = "65534"

    func mode(of path: String) -> (mode: mode_t, gid: gid_t) {
        var info = stat()
        _ = lstat(path, &info)
        return (info.st_mode & 0o777, info.st_gid)
    }

    /// Runs baton-health on `socket` as uid/gid 65534, with `capabilities` (ambient) if given.
    func healthAsNobody(
        _ batonHealth: String,
        _ socket: String,
        capabilities: String?,
        in directory: TemporaryDirectory
    ) async throws -> (status: Int32?, output: String) {
        var arguments = ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups"]
        if let capabilities {
            arguments += ["--inh-caps=+\(capabilities)", "--ambient-caps=+\(capabilities)"]
        }
        return try await ServiceProcess.run(
            path: "/usr/bin/setpriv",
            arguments: arguments + [batonHealth, socket],
            in: directory
        )
    }

    @Test("a peer that is neither this user, root, nor in the socket group is logged and disconnected")
    func strangerRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o711)
        let batonHealth = try await CClientTests.buildBatonHealth(into: directory)
        let service = try ServiceProcess.start(
            "metrics-collector",
            workingDirectory: directory.path,
            logPath: directory.appending("service.log")
        )
        defer { service.stop() }
        let socket = directory.appending("var/run/metrics-collector.sock")
        try await service.waitUntilServing(socketPath: socket)

        // Without a capability, the socket's mode 0600 already keeps nobody out.
        let denied = try await self.healthAsNobody(batonHealth, socket, capabilities: nil, in: directory)
        #expect(denied.status == 2)
        #expect(denied.output.contains("Permission denied"))

        // With CAP_DAC_OVERRIDE the file mode is no obstacle: the server's credential check is what refuses it.
        let refused = try await self.healthAsNobody(
            batonHealth,
            socket,
            capabilities: "dac_override",
            in: directory
        )
        #expect(refused.status == 2)
        #expect(!refused.output.contains("SERVING"))
        #expect(
            await eventually {
                service.output.contains("refused a peer that is neither this user, root, nor in the socket group")
                    && service.output.contains("uid 65534")
            }
        )
        try await service.waitUntilServing(socketPath: socket, within: .seconds(5))
    }

    @Test("BATON_SOCKET_GROUP lets the group's members in: socket 0660 and run directory 0710 in that group")
    func socketGroupAllowed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o711)
        guard let group = getgrnam("nogroup") else {
            Issue.record("this system has no group 'nogroup'")
            return
        }
        let gid = group.pointee.gr_gid
        let batonHealth = try await CClientTests.buildBatonHealth(into: directory)
        let service = try ServiceProcess.start(
            "metrics-collector",
            environment: ["BATON_SOCKET_GROUP": "nogroup"],
            workingDirectory: directory.path,
            logPath: directory.appending("service.log")
        )
        defer { service.stop() }
        let socket = directory.appending("var/run/metrics-collector.sock")
        try await service.waitUntilServing(socketPath: socket)
        #expect(self.mode(of: socket) == (0o660, gid))
        #expect(self.mode(of: directory.appending("var/run")) == (0o710, gid))

        let allowed = try await self.healthAsNobody(batonHealth, socket, capabilities: nil, in: directory)
        #expect(allowed.status == 0)
        #expect(allowed.output == "SERVING\n")
    }
}
