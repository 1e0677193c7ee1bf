import BatonProto
import BatonRPC
import BatonTestKit
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// docs/PROTOCOL.md, "Transport": socket files, their modes, stale files, live sockets and peer credentials.
@Suite("Sockets")
struct SocketTests {
    func mode(of path: String) -> mode_t {
        var info = stat()
        _ = lstat(path, &info)
        return info.st_mode & 0o777
    }

    /// Leaves a socket file that nobody listens on, as a process killed with SIGKILL does.
    func makeStaleSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        guard bound == 0 else {
            throw TestKitError("bind \(path) failed")
        }
    }

    @Test("the socket is mode 0600 and a created run directory 0700")
    func modes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let runDirectory = directory.appending("run/nested")
        try SocketFile.createDirectory(runDirectory)
        #expect(self.mode(of: directory.appending("run")) == 0o700)
        #expect(self.mode(of: runDirectory) == 0o700)
        try await withEchoServer { socket, _, _ in
            #expect(self.mode(of: socket) == 0o600)
        }
    }

    @Test("a stale socket file is replaced on start")
    func staleSocketReplaced() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("stale.sock")
        try self.makeStaleSocket(at: path)
        #expect(!SocketFile.answers(path))
        let recorder = LogRecorder()
        let server = RPCServer(configuration: .init(socketPath: path), methods: RPCMethods(), logger: recorder.logger())
        try await server.bind()
        #expect(SocketFile.answers(path))
        #expect(recorder.messages(at: .info).contains { $0.hasPrefix("replaced a stale socket file") })
        server.shutdown()
        try await server.run()
        var info = stat()
        #expect(lstat(path, &info) != 0, "a clean shutdown removes the socket file")
    }

    @Test("a second server on a live socket is refused and the first keeps serving")
    func liveSocketRefused() async throws {
        try await withEchoServer { socket, _, _ in
            let second = RPCServer(
                configuration: .init(socketPath: socket),
                methods: RPCMethods(),
                logger: Logger(label: "second")
            )
            let error = await #expect(throws: SocketFileError.self) { try await second.bind() }
            #expect(error?.description == "another process is already serving on '\(socket)'")
            let client = RPCClient(socketPath: socket)
            let reply = try await client.unary(
                Grpc_Health_V1_Health.Method.check,
                Grpc_Health_V1_HealthCheckRequest(),
            )
            #expect(reply.status == .serving)
            await client.close()
        }
    }

    @Test("a new instance can bind while the old one drains, and the old one leaves the new socket alone")
    func restartOverlapsDrain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("overlap.sock")
        let echo = EchoService()
        let old = RPCServer(
            configuration: .init(socketPath: path, shutdownGracePeriod: .milliseconds(500)),
            methods: echo.methods,
            logger: Logger(label: "old")
        )
        try await old.bind()
        async let oldRunning: Void = old.run()
        let client = RPCClient(socketPath: path)
        var hang = Baton_Testing_V1_EchoRequest()
        hang.tag = "in flight"
        async let inFlight = try? client.unary(Baton_Testing_V1_Echo.Method.hang, hang)
        #expect(await eventually { echo.hasStarted("in flight") })

        old.shutdown()
        #expect(await eventually { !SocketFile.answers(path) }, "the old instance stops accepting at once")
        let new = RPCServer(configuration: .init(socketPath: path), methods: RPCMethods(), logger: Logger(label: "new"))
        try await new.bind()
        _ = await inFlight
        try await oldRunning  // the old instance has finished draining
        #expect(SocketFile.answers(path), "the new instance's socket survives the old one's exit")

        await client.close()
        new.shutdown()
        try await new.run()
    }

    @Test("a path that is not a socket is refused, not removed")
    func notASocket() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("file.sock")
        let file = fopen(path, "w")
        fclose(file)
        #expect(throws: SocketFileError.self) { try SocketFile.claim(path) }
        var info = stat()
        #expect(lstat(path, &info) == 0)
    }

    @Test("peers are let in when they are this user, root, or in the socket group")
    func peerPolicy() {
        let policy = PeerPolicy(serverUID: 1000, allowedGroup: 50)
        let noGroups: (UInt32) -> [UInt32] = { _ in [] }
        #expect(policy.allows(PeerCredentials(pid: 1, uid: 1000, gid: 1000), supplementaryGroups: noGroups))
        #expect(policy.allows(PeerCredentials(pid: 1, uid: 0, gid: 0), supplementaryGroups: noGroups))
        #expect(policy.allows(PeerCredentials(pid: 1, uid: 2000, gid: 50), supplementaryGroups: noGroups))
        #expect(policy.allows(PeerCredentials(pid: 1, uid: 2000, gid: 2000), supplementaryGroups: { _ in [7, 50] }))
        #expect(!policy.allows(PeerCredentials(pid: 1, uid: 2000, gid: 2000), supplementaryGroups: { _ in [7] }))
        #expect(
            !PeerPolicy(serverUID: 1000).allows(
                PeerCredentials(pid: 1, uid: 2000, gid: 50),
                supplementaryGroups: { _ in [50] }
            )
        )
    }
}
