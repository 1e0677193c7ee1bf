public import BatonRPC
public import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// A Baton service started as a real process in a temporary directory (its working directory, so its sockets
/// and data live in `var/` there), with a client on its socket. ``stop()`` ends the process and removes the
/// directory.
public struct RunningService: Sendable {
    /// The process name: `router`, `metrics-collector`, ...
    public let name: String
    /// The command-line arguments it was started with (and is restarted with).
    public let arguments: [String]
    public let directory: TemporaryDirectory
    public private(set) var process: ServiceProcess
    public private(set) var client: RPCClient

    public var socket: String { self.directory.appending("var/run/\(self.name).sock") }

    /// Starts `name` with `arguments` in `directory` and waits until it is SERVING.
    public static func start(
        _ name: String,
        arguments: [String] = [],
        in directory: TemporaryDirectory
    ) async throws -> RunningService {
        let (process, client) = try await Self.launch(name, arguments: arguments, in: directory)
        return RunningService(name: name, arguments: arguments, directory: directory, process: process, client: client)
    }

    private static func launch(
        _ name: String,
        arguments: [String],
        in directory: TemporaryDirectory
    ) async throws -> (ServiceProcess, RPCClient) {
        let process = try ServiceProcess.start(
            name,
            arguments: arguments,
            workingDirectory: directory.path,
            logPath: directory.appending("log")
        )
        let socket = directory.appending("var/run/\(name).sock")
        do {
            try await process.waitUntilServing(socketPath: socket)
        } catch {
            process.stop()
            throw error
        }
        return (process, RPCClient(socketPath: socket))
    }

    /// Calls `method` of the process, with a 10 s deadline.
    public func call<Request: Message, Reply: Message>(
        _ method: UnaryMethod<Request, Reply>,
        _ request: Request
    ) async throws -> Reply {
        try await self.client.unary(method, request, options: CallOptions(timeout: .seconds(10)))
    }

    /// Runs batonctl with `arguments` in the service's directory, so that it finds the service's socket.
    public func batonctl(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
        try await ServiceProcess.run(
            path: ServiceProcess.productsDirectory + "/batonctl",
            arguments: arguments,
            in: self.directory
        )
    }

    /// Kills the process with SIGKILL, as a crash would, and starts it again in the same directory.
    public mutating func killAndRestart() async throws {
        _ = try await self.restart(after: SIGKILL)
    }

    /// Sends `signal`, waits for the process to exit, and starts it again in the same directory, as an operator's
    /// restart does; returns how the old process exited (its status, or nil when it did not exit in 20 s).
    public mutating func restart(after signal: Int32) async throws -> Int32? {
        self.process.signal(signal)
        let status = await self.process.waitForExit()
        await self.client.close()
        (self.process, self.client) = try await Self.launch(self.name, arguments: self.arguments, in: self.directory)
        return status
    }

    public func stop() async {
        await self.client.close()
        self.process.stop()
        self.directory.remove()
    }

    /// Starts `name` in a fresh temporary directory, runs `body` with it, and stops it and removes the directory
    /// however `body` ends, thrown errors included.
    public static func with<Result>(
        _ name: String,
        arguments: [String] = [],
        prepare: (TemporaryDirectory) throws -> Void = { _ in },
        _ body: (inout RunningService) async throws -> Result
    ) async throws -> Result {
        let directory = try TemporaryDirectory()
        do {
            try prepare(directory)
        } catch {
            directory.remove()
            throw error
        }
        var running: RunningService
        do {
            running = try await Self.start(name, arguments: arguments, in: directory)
        } catch {
            directory.remove()
            throw error
        }
        do {
            let result = try await body(&running)
            await running.stop()
            return result
        } catch {
            await running.stop()
            throw error
        }
    }
}
