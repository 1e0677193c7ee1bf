// swift-tools-version: 6.1
// Baton: AI-to-human handoffs. The layers, bottom up:
//   BatonRPC (the wire protocol over Unix sockets, with its own frame and health messages)
//   -> BatonProto (the services' messages, typed methods and clients, generated from protos/)
//   -> BatonRuntime (configuration, logging, service wiring) and BatonStore (SQLite)
//   -> one library per service under Services/ (its domain and handlers), each with a short executable main.
//   BatonTestKit helps tests start real processes and speak raw frames; Tools/protoc-gen-baton generates the
//   typed methods and clients.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let nio = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioConcurrency = Target.Dependency.product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let protobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let yams = Target.Dependency.product(name: "Yams", package: "Yams")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
let bcrypt = Target.Dependency.product(name: "HummingbirdBcrypt", package: "hummingbird-auth")

/// A service: its library `<Name>Kit` (domain and handlers, which tests import) and the executable `process` (a main
/// of a few lines), so that the Procfile, the socket and the binary share one name.
func service(
    _ name: String,
    process: String,
    dependencies: [Target.Dependency],
    resources: [Resource]? = nil
) -> [Target] {
    [
        .target(
            name: name + "Kit",
            dependencies: ["BatonRuntime", "BatonRPC", "BatonProto", argumentParser, logging] + dependencies,
            path: "Services/\(name)/\(name)Kit",
            resources: resources,
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: name,
            dependencies: [.target(name: name + "Kit"), argumentParser],
            path: "Services/\(name)/\(process)",
            swiftSettings: swiftSettings
        ),
    ]
}

/// A benchmark: an executable of its own under Benchmarks/, run by hand (Benchmarks/README.md), never by the tests.
func benchmark(_ name: String, dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["BatonRuntime", "BatonRPC", "BatonProto", argumentParser, logging, protobuf] + dependencies,
        path: "Benchmarks/\(name)",
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "context-assembler", targets: ["ContextAssembler"]),
        .executable(name: "gate-evaluator", targets: ["GateEvaluator"]),
        .executable(name: "router", targets: ["Router"]),
        .executable(name: "metrics-collector", targets: ["MetricsCollector"]),
        .executable(name: "supervisor", targets: ["Supervisor"]),
        .executable(name: "desk", targets: ["Desk"]),
        .executable(name: "batonctl", targets: ["Batonctl"]),
        .executable(name: "baton-sim", targets: ["BatonSim"]),
        .executable(name: "rpc-benchmark", targets: ["RPCBenchmark"]),
        .executable(name: "context-assembler-benchmark", targets: ["ContextBenchmark"]),
        .executable(name: "gate-evaluator-benchmark", targets: ["GateEvaluatorBenchmark"]),
        .executable(name: "router-benchmark", targets: ["RouterBenchmark"]),
        .executable(name: "metrics-benchmark", targets: ["MetricsBenchmark"]),
        .executable(name: "soak-benchmark", targets: ["SoakBenchmark"]),
        .executable(name: "protoc-gen-baton", targets: ["protoc-gen-baton"]),
        .executable(name: "baton-fuzz", targets: ["BatonFuzz"]),
        .library(name: "BatonRPC", targets: ["BatonRPC"]),
        .library(name: "BatonProto", targets: ["BatonProto"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // The desk's HTTP. Without its default traits, which would bring swift-configuration in.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
    ],
    targets: [
        // Shared/: libraries every process uses. Nothing here imports a service.
        .target(
            name: "BatonRPC",
            dependencies: [nio, nioPosix, protobuf, logging, lifecycle],
            path: "Shared/BatonRPC",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonProto",
            dependencies: ["BatonRPC", protobuf],
            path: "Shared/BatonProto",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonRuntime",
            dependencies: [
                "BatonRPC", "BatonProto", "CBatonProcess", argumentParser, logging, lifecycle, unixSignals, nio,
                nioPosix, nioConcurrency, yams,
            ],
            path: "Shared/BatonRuntime",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonStore",
            dependencies: [grdb, .product(name: "GRDBSQLite", package: "GRDB.swift"), logging],
            path: "Shared/BatonStore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonTestKit",
            dependencies: ["BatonRPC", "BatonProto", "BatonRuntime", "CBatonProcess", nio, nioPosix, protobuf],
            path: "Shared/BatonTestKit",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CBatonProcess",
            path: "Shared/CBatonProcess"
        ),

        // Tools/: the protoc plugin that writes the typed methods and clients (scripts/generate-protos.sh runs it).
        .executableTarget(
            name: "protoc-gen-baton",
            dependencies: [protobuf, .product(name: "SwiftProtobufPluginLibrary", package: "swift-protobuf")],
            path: "Tools/protoc-gen-baton",
            swiftSettings: swiftSettings
        ),

        // Clients/: what operators and integrators run.
        .executableTarget(
            name: "Batonctl",
            dependencies: [
                "BatonRuntime", "BatonRPC", "BatonProto", "GateEvaluatorKit", "RouterKit", "DeskKit", argumentParser,
                logging, protobuf,
            ],
            path: "Clients/batonctl",
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "BatonSim",
            dependencies: ["BatonRuntime", "BatonRPC", "BatonProto", argumentParser, yams, protobuf, logging],
            path: "Clients/baton-sim",
            swiftSettings: swiftSettings
        ),

        // Benchmarks/
        benchmark("RPCBenchmark", dependencies: ["BatonTestKit"]),
        benchmark("GateEvaluatorBenchmark", dependencies: ["GateEvaluatorKit"]),
        benchmark("RouterBenchmark", dependencies: ["RouterKit"]),
        benchmark("MetricsBenchmark", dependencies: ["MetricsCollectorKit"]),
        benchmark("SoakBenchmark", dependencies: []),
        benchmark("ContextBenchmark", dependencies: []),

        // Fuzz/: the libFuzzer harnesses (scripts/fuzz.sh builds them with the fuzzer); built as usual, they replay
        // files.
        .executableTarget(
            name: "BatonFuzz",
            dependencies: [
                "BatonRPC", "BatonProto", "BatonRuntime", "GateEvaluatorKit", "RouterKit", "SupervisorKit", nio,
                protobuf,
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Fuzz/BatonFuzz",
            swiftSettings: swiftSettings
        ),

        // Tests/
        .testTarget(
            name: "BatonRPCTests",
            dependencies: ["BatonRPC", "BatonProto", "BatonTestKit", logging, nioConcurrency, nio, nioPosix, protobuf],
            path: "Tests/BatonRPCTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonRuntimeTests",
            dependencies: ["BatonRuntime", argumentParser, logging],
            path: "Tests/BatonRuntimeTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonStoreTests",
            dependencies: ["BatonStore", "BatonTestKit", grdb],
            path: "Tests/BatonStoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateEvaluatorTests",
            dependencies: ["GateEvaluatorKit", "BatonRuntime", "BatonTestKit", logging, protobuf],
            path: "Tests/GateEvaluatorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RouterTests",
            dependencies: ["RouterKit", "BatonRuntime", "BatonStore", "BatonTestKit", grdb, protobuf],
            path: "Tests/RouterTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetricsCollectorTests",
            dependencies: [
                "MetricsCollectorKit", "BatonRPC", "BatonRuntime", "BatonStore", "BatonTestKit", grdb, logging,
                protobuf,
            ],
            path: "Tests/MetricsCollectorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ContextAssemblerTests",
            dependencies: ["ContextAssemblerKit", "BatonProto"],
            path: "Tests/ContextAssemblerTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["SupervisorKit", "BatonProto", "BatonRuntime", "BatonTestKit", logging, nioPosix],
            path: "Tests/SupervisorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["BatonRPC", "BatonProto", "BatonRuntime", "BatonTestKit", bcrypt, grdb, protobuf],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)

// Services/: one library and one executable per process.
package.targets += service(
    "ContextAssembler",
    process: "context-assembler",
    dependencies: ["BatonStore", grdb, lifecycle, nioPosix, protobuf]
)
package.targets += service(
    "GateEvaluator",
    process: "gate-evaluator",
    dependencies: [nioConcurrency, lifecycle, unixSignals, yams]
)
package.targets += service(
    "Router",
    process: "router",
    dependencies: ["BatonStore", grdb, nioConcurrency, lifecycle, protobuf, yams]
)
package.targets += service(
    "MetricsCollector",
    process: "metrics-collector",
    dependencies: ["BatonStore", grdb, .product(name: "Histogram", package: "hdrhistogram-swift"), protobuf]
)
package.targets += service(
    "Desk",
    process: "desk",
    dependencies: [
        "BatonStore", grdb, bcrypt, lifecycle, protobuf, yams,
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
        .product(name: "NIOWebSocket", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ],
    // The agent's screen and the dashboard, compiled into the binary: nothing is read from disk or fetched.
    resources: ["desk.html", "desk.css", "desk.js", "ops.html", "ops.js"].map { .embedInCode("Resources/\($0)") }
)
package.targets += service(
    "Supervisor",
    process: "supervisor",
    dependencies: ["CBatonProcess", nio, nioPosix, nioConcurrency, lifecycle, unixSignals, yams]
)
