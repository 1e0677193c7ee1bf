import ArgumentParser
import BatonRPC
import BatonTestKit
import Foundation
import Logging
import SwiftProtobuf

/// Measures the RPC runtime against the floor, a raw Unix-socket ping-pong in C, in the same run.
///
/// Client and server are separate processes: this executable starts itself with `serve` for the server and the
/// `pingpong` C program for the floor. Requests and replies are about 100 bytes each.
@main
struct RPCBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc-benchmark",
        abstract: "Unary round-trip latency and throughput of Baton's RPC runtime, beside a raw-socket floor.",
        subcommands: [Measure.self, Serve.self],
        defaultSubcommand: Measure.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve baton.testing.v1.Echo on SOCKET (internal).")

    @Argument var socket: String

    func run() async throws {
        var logger = Logger(label: "rpc-benchmark.server")
        logger.logLevel = .warning
        let server = RPCServer(
            configuration: RPCServer.Configuration(socketPath: self.socket),
            methods: EchoService().methods,
            logger: logger
        )
        try await server.bind()
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        // Runs until the benchmark kills it.
        try await server.run()
    }
}

struct Measure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the benchmark and print the figures.")

    @Option(help: "Sequential calls for the latency figures.") var sequential = 100_000
    @Option(help: "Calls for each throughput figure.") var calls = 400_000
    @Option(help: "Calls in flight per connection for the throughput figures.") var inFlight = 64
    @Option(help: "The pingpong floor program (Benchmarks/c/pingpong).") var pingpong: String

    func run() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let pingpong = URL(fileURLWithPath: self.pingpong).standardizedFileURL.path
        let this = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")

        print("floor: raw Unix socket, 100-byte ping-pong in C, two processes")
        let floorSocket = directory.appending("floor.sock")
        let floorServer = try self.startAndWaitForReady(pingpong, ["server", floorSocket], directory)
        let floorLatency = try self.runToOutput(pingpong, ["client", floorSocket, "\(self.sequential)", "1"])
            .split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        floorServer.stop()
        let floorServer2 = try self.startAndWaitForReady(pingpong, ["server", floorSocket], directory)
        let floorRate =
            Double(
                try self.runToOutput(pingpong, ["client", floorSocket, "\(self.calls)", "\(self.inFlight)"])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            ) ?? 0
        floorServer2.stop()
        print(String(format: "  sequential: p50 %.1f µs, p99 %.1f µs", floorLatency[0], floorLatency[1]))
        print(String(format: "  %d in flight: %.0f round trips/s", self.inFlight, floorRate))

        print("baton: RPCClient -> RPCServer, unary Echo, ~100-byte request and reply, two processes")
        let socket = directory.appending("echo.sock")
        let server = try self.startAndWaitForReady(this, ["serve", socket], directory)
        defer { server.stop() }

        var request = Baton_Testing_V1_EchoRequest()
        request.text = String(repeating: "x", count: 95)
        let requestSize = (try request.serializedBytes() as [UInt8]).count

        let client = RPCClient(socketPath: socket)
        _ = try await client.unary(Baton_Testing_V1_Echo.Method.echo, request)
        print("  payload: request \(requestSize) bytes, reply \(requestSize) bytes")

        let onPool = try await self.sequentialLatency(client, request)
        let onLoop = try await withTaskExecutorPreference(client.taskExecutor) {
            try await self.sequentialLatency(client, request)
        }
        print(
            String(
                format: "  sequential, caller on the concurrency pool: p50 %.1f µs (%.2fx floor), p99 %.1f µs",
                onPool.p50,
                onPool.p50 / floorLatency[0],
                onPool.p99
            )
        )
        print(
            String(
                format: "  sequential, caller on the client's event loop: p50 %.1f µs (%.2fx floor), p99 %.1f µs",
                onLoop.p50,
                onLoop.p50 / floorLatency[0],
                onLoop.p99
            )
        )

        let one = try await self.throughput([client], request)
        print(
            String(
                format: "  %d in flight, 1 connection: %.0f calls/s (%.2fx floor)",
                self.inFlight,
                one,
                one / floorRate
            )
        )
        let clients = [client] + (1..<4).map { _ in RPCClient(socketPath: socket) }
        let four = try await self.throughput(clients, request)
        print(String(format: "  %d in flight on each of 4 connections: %.0f calls/s", self.inFlight, four))
        for client in clients {
            await client.close()
        }
    }

    func sequentialLatency(
        _ client: RPCClient,
        _ request: Baton_Testing_V1_EchoRequest
    ) async throws -> (p50: Double, p99: Double) {
        var samples: [Double] = []
        samples.reserveCapacity(self.sequential)
        let clock = ContinuousClock()
        for _ in 0..<self.sequential {
            let start = clock.now
            _ = try await client.unary(Baton_Testing_V1_Echo.Method.echo, request)
            let elapsed = clock.now - start
            samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[samples.count * 99 / 100])
    }

    /// Calls per second with `inFlight` callers per client, each on its client's event loop.
    func throughput(_ clients: [RPCClient], _ request: Baton_Testing_V1_EchoRequest) async throws -> Double {
        let perCaller = self.calls / (clients.count * self.inFlight)
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                for _ in 0..<self.inFlight {
                    group.addTask(executorPreference: client.taskExecutor) {
                        for _ in 0..<perCaller {
                            _ = try await client.unary(
                                Baton_Testing_V1_Echo.Method.echo,
                                request,
                            )
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(perCaller * clients.count * self.inFlight) / seconds
    }

    func startAndWaitForReady(
        _ path: String,
        _ arguments: [String],
        _ directory: TemporaryDirectory
    ) throws
        -> ServiceProcess
    {
        let log = directory.appending("\(arguments[0]).\(UInt32.random(in: 0...UInt32.max)).log")
        let process = try ServiceProcess.start(
            path: path,
            arguments: arguments,
            workingDirectory: directory.path,
            logPath: log
        )
        let deadline = ContinuousClock.now + .seconds(30)
        while !process.output.contains("ready") {
            guard process.poll() == nil, ContinuousClock.now < deadline else {
                throw ValidationError("\(path) \(arguments.joined(separator: " ")) did not start: \(process.output)")
            }
            usleep(10_000)
        }
        return process
    }

    func runToOutput(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
