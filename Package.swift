// swift-tools-version: 6.1
// Baton: AI-to-human handoffs. The layers, bottom up:
//   BatonProto (generated messages) -> BatonRPC (the wire protocol over Unix sockets)
//   -> BatonRuntime (configuration, logging, service wiring) -> the services under Services/.
//   BatonTestKit helps tests start real processes and speak raw frames.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Baton",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "context-assembler", targets: ["ContextAssembler"]),
        .executable(name: "gate-evaluator", targets: ["GateEvaluator"]),
        .executable(name: "router", targets: ["Router"]),
        .executable(name: "metrics-collector", targets: ["MetricsCollector"]),
        .executable(name: "supervisor", targets: ["Supervisor"]),
        .executable(name: "batonctl", targets: ["Batonctl"]),
        .executable(name: "rpc-benchmark", targets: ["RPCBenchmark"]),
        .library(name: "BatonRPC", targets: ["BatonRPC"]),
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
    ],
    targets: [
        // Shared/: libraries every process uses. Nothing here imports a service.
        .target(
            name: "BatonProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Shared/BatonProto",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonRPC",
            dependencies: [
                "BatonProto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/BatonRPC",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonRuntime",
            dependencies: [
                "BatonRPC",
                "BatonProto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Shared/BatonRuntime",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonStore",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/BatonStore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatonTestKit",
            dependencies: [
                "BatonRPC",
                "BatonProto",
                "BatonRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Shared/BatonTestKit",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "CBatonProcess",
            path: "Shared/CBatonProcess"
        ),

        // Services/: one executable per process, named as in the Procfile and the socket.
        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "BatonRuntime",
                "BatonRPC",
                "BatonProto",
                "CBatonProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Services/Supervisor",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ContextAssembler",
            dependencies: ["BatonRuntime"],
            path: "Services/ContextAssembler",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "GateEvaluator",
            dependencies: [
                "BatonRuntime",
                "BatonRPC",
                "BatonProto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Services/GateEvaluator",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Router",
            dependencies: [
                "BatonRuntime",
                "BatonRPC",
                "BatonProto",
                "BatonStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Services/Router",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MetricsCollector",
            dependencies: [
                "BatonRuntime",
                "BatonRPC",
                "BatonProto",
                "BatonStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Services/MetricsCollector",
            swiftSettings: swiftSettings
        ),

        // Clients/: what operators and integrators run.
        .executableTarget(
            name: "Batonctl",
            dependencies: [
                "BatonRuntime",
                "BatonRPC",
                "BatonProto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Clients/batonctl",
            swiftSettings: swiftSettings
        ),

        // Benchmarks/: run by hand (see Benchmarks/README.md), never by the tests.
        .executableTarget(
            name: "RPCBenchmark",
            dependencies: [
                "BatonRPC",
                "BatonTestKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Benchmarks/RPCBenchmark",
            swiftSettings: swiftSettings
        ),

        // Tests/
        .testTarget(
            name: "BatonRPCTests",
            dependencies: [
                "BatonRPC",
                "BatonProto",
                "BatonTestKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tests/BatonRPCTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonRuntimeTests",
            dependencies: [
                "BatonRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/BatonRuntimeTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonStoreTests",
            dependencies: ["BatonStore", "BatonTestKit", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/BatonStoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateEvaluatorTests",
            dependencies: ["GateEvaluator", "BatonRuntime", "BatonTestKit"],
            path: "Tests/GateEvaluatorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RouterTests",
            dependencies: [
                "Router", "BatonRuntime", "BatonStore", "BatonTestKit",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tests/RouterTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetricsCollectorTests",
            dependencies: ["MetricsCollector", "BatonRuntime", "BatonStore", "BatonTestKit"],
            path: "Tests/MetricsCollectorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["Supervisor"],
            path: "Tests/SupervisorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "BatonRPC",
                "BatonProto",
                "BatonRuntime",
                "BatonTestKit",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
