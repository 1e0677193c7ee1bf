public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Serves ``RPCMethods`` on a Unix domain socket, as docs/PROTOCOL.md describes, plus `grpc.health.v1.Health`.
///
/// A `Service`: `run()` binds (unless ``bind()`` already did), serves until graceful shutdown, cancellation or
/// ``shutdown()``, then drains: health turns `NOT_SERVING`, the socket stops accepting, open calls get
/// ``Configuration/shutdownGracePeriod`` to finish, the rest are cancelled, and the socket file is removed.
public final class RPCServer: Service, Sendable {
    /// Where and how a server listens.
    public struct Configuration: Sendable {
        /// The socket's path, `$BATON_RUN_DIR/<process-name>.sock`.
        public var socketPath: String
        /// The group (from `BATON_SOCKET_GROUP`) whose members may connect too; the socket is then mode 0660.
        public var socketGroup: UInt32?
        /// How long open calls may run on after shutdown begins before they are cancelled.
        public var shutdownGracePeriod: Duration
        /// How long a connection's unfinished frame may go without a byte before the connection is closed.
        public var stalledFrameTimeout: Duration
        /// The most bytes the unfinished frames of all connections may hold together; past it, the connections
        /// holding the most are closed.
        public var partialFrameLimit: Int

        /// A configuration for a socket at `socketPath`, private to this user, with a 5 s grace period, 10 s for a
        /// stalled frame and 64 MiB for all partial frames.
        public init(
            socketPath: String,
            socketGroup: UInt32? = nil,
            shutdownGracePeriod: Duration = .seconds(5),
            stalledFrameTimeout: Duration = .seconds(10),
            partialFrameLimit: Int = 64 << 20
        ) {
            self.socketPath = socketPath
            self.socketGroup = socketGroup
            self.shutdownGracePeriod = shutdownGracePeriod
            self.stalledFrameTimeout = stalledFrameTimeout
            self.partialFrameLimit = partialFrameLimit
        }
    }

    private struct State {
        var listener: (any Channel)?
        var socketFile: SocketFile.Identity?
        var connections: [ObjectIdentifier: (channel: any Channel, handler: NIOLoopBound<ServerConnectionHandler>)] =
            [:]
        var stopping = false
    }

    /// The server's configuration.
    public let configuration: Configuration
    /// What `grpc.health.v1.Health` reports; set `.serving` once the process can do its work.
    public let health: HealthStatusProvider
    private let methods: RPCMethods
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let stopRequested: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let partialFrames: PartialFrames

    /// A server for `methods` (Health is added to them) on `eventLoopGroup`.
    public init(
        configuration: Configuration,
        methods: RPCMethods,
        health: HealthStatusProvider = HealthStatusProvider(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        var all = health.methods
        all.merge(methods)
        self.configuration = configuration
        self.methods = all
        self.health = health
        self.group = eventLoopGroup
        self.logger = logger
        self.stopRequested = AsyncStream.makeStream()
        self.partialFrames = PartialFrames(
            timeout: TimeAmount(configuration.stalledFrameTimeout),
            limit: configuration.partialFrameLimit,
            logger: logger
        )
    }

    /// Claims the socket path and starts accepting connections. Throws ``SocketFileError`` when another live
    /// process serves on the path; replaces a stale socket file.
    public func bind() async throws {
        let path = self.configuration.socketPath
        if try SocketFile.claim(path) {
            self.logger.info("replaced a stale socket file", metadata: ["baton.socket": "\(path)"])
        }
        let policy = PeerPolicy(allowedGroup: self.configuration.socketGroup)
        let listener: any Channel
        do {
            listener = try await ServerBootstrap(group: self.group)
                .serverChannelOption(.backlog, value: 256)
                .childChannelInitializer { channel in
                    self.admit(channel, policy: policy)
                }
                .bind(unixDomainSocketPath: path)
                .get()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw SocketFileError("another process is already serving on '\(path)'")
        }
        do {
            try SocketFile.restrict(path, group: self.configuration.socketGroup)
        } catch {
            try? await listener.close()
            unlink(path)
            throw error
        }
        let identity = SocketFile.identity(of: path)
        self.state.withLockedValue {
            $0.listener = listener
            $0.socketFile = identity
        }
        self.logger.info("listening", metadata: ["baton.socket": "\(path)"])
    }

    /// Asks a running server to drain and return from `run()`.
    public func shutdown() {
        self.stopRequested.continuation.finish()
    }

    public func run() async throws {
        if self.state.withLockedValue({ $0.listener == nil }) {
            try await self.bind()
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for await _ in self.stopRequested.stream {}
            } onGracefulShutdown: {
                self.shutdown()
            }
        } onCancel: {
            self.shutdown()
        }
        await self.drain()
    }

    private func drain() async {
        let (listener, connections) = self.state.withLockedValue { state in
            state.stopping = true
            return (state.listener, Array(state.connections.values))
        }
        self.logger.info("draining", metadata: ["baton.connections": "\(connections.count)"])
        self.health.enterDraining()
        try? await listener?.close()
        for connection in connections {
            connection.channel.eventLoop.execute { connection.handler.value.beginDrain() }
        }
        let closed = EventLoopFuture.andAllComplete(
            connections.map { $0.channel.closeFuture },
            on: self.group.any()
        )
        let grace = self.configuration.shutdownGracePeriod
        let graceTimer = self.group.any().scheduleTask(in: TimeAmount(grace)) {
            for connection in connections {
                connection.channel.eventLoop.execute { connection.handler.value.forceClose() }
            }
        }
        try? await closed.get()
        graceTimer.cancel()
        // A new instance may have bound the path while this one drained: remove the file only if it is ours.
        let ours = self.state.withLockedValue { $0.socketFile }
        if let ours, SocketFile.identity(of: self.configuration.socketPath) == ours {
            unlink(self.configuration.socketPath)
        }
        self.logger.info("stopped")
    }

    /// Checks the peer's credentials, then installs the frame decoder and the call handler.
    private func admit(_ channel: any Channel, policy: PeerPolicy) -> EventLoopFuture<Void> {
        guard let options = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(SocketFileError("channel cannot report peer credentials"))
        }
        let credentials: EventLoopFuture<KernelPeerCredentials> = options.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(SO_PEERCRED)
        )
        return credentials.flatMapThrowing { credentials in
            let peer = PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
            guard policy.allows(peer) else {
                self.logger.warning(
                    "refused a peer that is neither this user, root, nor in the socket group",
                    metadata: ["baton.peer": "\(peer)"]
                )
                throw PeerRefused()
            }
            let handler = ServerConnectionHandler(
                methods: self.methods,
                peer: peer,
                eventLoop: channel.eventLoop,
                logger: self.logger
            )
            let sync = channel.pipeline.syncOperations
            let watch = PartialFrameWatch(frames: self.partialFrames, channel: channel, logger: self.logger)
            try sync.addHandler(ByteToMessageHandler(FrameDecoder(watch: watch)))
            try sync.addHandler(handler)
            try self.track(channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
        }
    }

    private func track(_ channel: any Channel, handler: NIOLoopBound<ServerConnectionHandler>) throws {
        let id = ObjectIdentifier(channel)
        let accepted = self.state.withLockedValue { state in
            guard !state.stopping else {
                return false
            }
            state.connections[id] = (channel, handler)
            return true
        }
        guard accepted else {
            throw PeerRefused()
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
    }
}

private struct PeerRefused: Error {}

/// The layout of Linux's `struct ucred`, which `SO_PEERCRED` fills (Glibc hides the type behind `_GNU_SOURCE`).
private struct KernelPeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
