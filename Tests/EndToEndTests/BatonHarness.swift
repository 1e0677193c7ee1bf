import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import SwiftProtobuf
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Baton's four service processes started for real in one temporary directory, sharing its `var/run` and
/// `var/data`, with the example billing and bereavement workflows and two destinations that are always open (so
/// that no test depends on the time of day): `desk-a` in house and `desk-b` a partner, both PCI-certified. No
/// destination has the bereavement skill.
final class BatonHarness: Sendable {
    static let processes = ["gate-evaluator", "router", "metrics-collector", "context-assembler"]

    static let destinations = """
        policy:
          target_live_human_s: 5
          max_live_human_s: 8
          prefer: in_house
          ring_and_greet_s: 3
          reservation_timeout_s: 30
          categories:
            payment:
              requires: [pci]
        destinations:
          - id: desk-a
            kind: in_house
            skills: [billing, refunds, payments, pci, retention, contracts]
            certifications: [pci, legal_review]
            hours:
              time_zone: UTC
              open:
                - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
            transfer: sip:desk-a@pbx.test
            agents: 10
            average_handle_s: 300
            cost_per_min: 1.0
            context: live
          - id: desk-b
            kind: partner
            skills: [billing, refunds, payments, pci, retention, contracts]
            certifications: [pci, legal_review]
            hours:
              time_zone: UTC
              open:
                - {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
            transfer: sip:desk-b@partner.test
            agents: 10
            average_handle_s: 300
            cost_per_min: 0.5
            context: live

        """

    let directory: TemporaryDirectory
    private let running = Mutex<[String: ServiceProcess]>([:])
    let assembler: Baton_Context_V1_ContextAssembler.Client
    let metrics: Baton_Metrics_V1_MetricsCollector.Client
    let router: Baton_Routing_V1_Router.Client
    private let clients: [RPCClient]

    private init(directory: TemporaryDirectory) {
        self.directory = directory
        let assembler = RPCClient(socketPath: directory.appending("var/run/context-assembler.sock"))
        let metrics = RPCClient(socketPath: directory.appending("var/run/metrics-collector.sock"))
        let router = RPCClient(socketPath: directory.appending("var/run/router.sock"))
        self.clients = [assembler, metrics, router]
        self.assembler = Baton_Context_V1_ContextAssembler.Client(assembler)
        self.metrics = Baton_Metrics_V1_MetricsCollector.Client(metrics)
        self.router = Baton_Routing_V1_Router.Client(router)
    }

    /// Starts all four in a fresh directory, runs `body`, and stops them and removes the directory however `body`
    /// ends.
    static func with<T>(
        assemblerArguments: [String] = [],
        _ body: (BatonHarness) async throws -> T
    ) async throws -> T {
        let directory = try TemporaryDirectory()
        let harness = BatonHarness(directory: directory)
        do {
            try Self.writeConfiguration(in: directory)
            for name in Self.processes {
                try await harness.start(name, arguments: name == "context-assembler" ? assemblerArguments : [])
            }
            let result = try await body(harness)
            await harness.stop()
            return result
        } catch {
            await harness.stop()
            throw error
        }
    }

    /// Writes the harness's configuration into `directory/config`: two example workflows and two always-open
    /// destinations.
    static func writeConfiguration(in directory: TemporaryDirectory) throws {
        mkdir(directory.appending("config"), 0o755)
        mkdir(directory.appending("config/workflows"), 0o755)
        for workflow in ["billing-support", "bereavement"] {
            let text = try TextFile.read(ServiceProcess.repositoryDirectory + "/config/workflows/\(workflow).yaml")
            try Self.write(text, to: directory.appending("config/workflows/\(workflow).yaml"))
        }
        try Self.write(Self.destinations, to: directory.appending("config/destinations.yaml"))
    }

    /// Starts `name` (again) and waits until it is SERVING.
    func start(_ name: String, arguments: [String] = []) async throws {
        let process = try ServiceProcess.start(
            name,
            arguments: arguments,
            workingDirectory: self.directory.path,
            logPath: self.directory.appending("\(name).log")
        )
        self.running.withLock { $0[name] = process }
        try await process.waitUntilServing(socketPath: self.directory.appending("var/run/\(name).sock"))
    }

    /// The process id of `name`, while it runs.
    func pid(of name: String) -> Int32? {
        self.running.withLock { $0[name]?.pid }
    }

    /// Kills `name` with SIGKILL, as a crash would, and waits for it to be gone.
    func kill(_ name: String) async {
        guard let process = self.running.withLock({ $0.removeValue(forKey: name) }) else {
            return
        }
        process.signal(SIGKILL)
        _ = await process.waitForExit()
    }

    /// Stops every process (SIGTERM), leaving the directory.
    func stopProcesses() async {
        for process in self.running.withLock({ Array($0.values) }) {
            process.stop()
        }
        self.running.withLock { $0 = [:] }
    }

    func stop() async {
        for client in self.clients {
            await client.close()
        }
        for process in self.running.withLock({ Array($0.values) }) {
            process.stop()
        }
        self.running.withLock { $0 = [:] }
        self.directory.remove()
    }

    /// The log a process wrote.
    func log(_ name: String) -> String {
        (try? TextFile.read(self.directory.appending("\(name).log"))) ?? ""
    }

    static func write(_ text: String, to path: String) throws {
        guard let file = fopen(path, "w") else {
            throw TestKitError("cannot write \(path)")
        }
        fputs(text, file)
        fclose(file)
    }

    // MARK: - Calls as a voice AI makes them

    static let options = CallOptions(timeout: .seconds(10))

    func open(_ call: String, workflow: String = "billing-support") async throws -> Baton_Context_V1_Call {
        try await self.assembler.openCall(
            .with {
                $0.callID = call
                $0.workflowID = workflow
                $0.caller = .with {
                    $0.phoneNumber = "+353871234567"
                    $0.language = "en-IE"
                }
            },
            options: Self.options
        )
    }

    func record(
        _ call: String,
        _ id: String,
        _ kind: Baton_Context_V1_Event.OneOf_Kind
    ) async throws -> Baton_Context_V1_RecordReply {
        try await self.assembler.record(
            .with {
                $0.event = .with {
                    $0.callID = call
                    $0.eventID = id
                    $0.kind = kind
                }
            },
            options: Self.options
        )
    }

    /// Turns, slots and identity of a verified billing caller, up to (not including) the payment intent.
    func verifiedCaller(_ call: String) async throws {
        _ = try await self.open(call)
        _ = try await self.record(call, "e1", .callerTurn(.with { $0.text = "Hi, I want to pay my bill" }))
        _ = try await self.record(
            call,
            "e2",
            .slotCaptured(
                .with {
                    $0.name = "identity.name"
                    $0.value = "Jane Doe"
                    $0.confirmed = true
                }
            )
        )
        _ = try await self.record(
            call,
            "e3",
            .slotCaptured(
                .with {
                    $0.name = "account.id"
                    $0.value = "AC-1234-5678"
                    $0.confirmed = true
                }
            )
        )
        _ = try await self.record(call, "e4", .identityVerified(.with { $0.method = "knowledge_questions" }))
        _ = try await self.record(
            call,
            "e5",
            .callerTurn(.with { $0.text = "My card is 4111 1111 1111 1111, CVV 737" })
        )
        _ = try await self.record(
            call,
            "e6",
            .slotCaptured(
                .with {
                    $0.name = "card.last4"
                    $0.value = "1111"
                }
            )
        )
    }

    /// The payment intent that fires billing-support's take-payment gate.
    func paymentIntent(_ call: String, id: String = "e7") async throws -> Baton_Context_V1_RecordReply {
        try await self.record(call, id, .intentDetected(.with { $0.intent = "make_payment" }))
    }
}
