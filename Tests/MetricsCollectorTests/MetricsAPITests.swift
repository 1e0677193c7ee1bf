import BatonProto
import BatonRPC
import BatonRuntime
import BatonTestKit
import Foundation
import Logging
import SwiftProtobuf
import Testing

@testable import MetricsCollectorKit

/// The metrics collector's handlers, served from this process through their generated registration.
@Suite("Metrics API in process")
struct MetricsAPITests {
    @Test("every method of baton.metrics.v1.MetricsCollector has a handler; a recorded event is summarised")
    func servesEveryMethod() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var logger = Logger(label: "metrics-api-test")
        logger.logLevel = .critical
        let prepared = Prepared<MetricsCore>("the event store")
        prepared.set(
            try await MetricsCore.open(
                database: directory.appending("metrics.sqlite"),
                judging: Judging(),
                logger: logger
            )
        )
        let methods = MetricsAPI(prepared: prepared).methods
        #expect(methods.serves(Baton_Metrics_V1_MetricsCollector.info))
        try await withServer(methods) { client, _ in
            let metrics = Baton_Metrics_V1_MetricsCollector.Client(client)
            var event = Baton_Metrics_V1_Event()
            event.eventID = "e-1"
            event.handoffID = "h-1"
            event.callID = "c-1"
            event.kind = .gateFired
            event.atUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
            event.origin = .designed
            event.gate = "take-payment"
            let recorded = try await metrics.record(.with { $0.event = event })
            #expect(recorded.recorded == 1)
            let again = try await metrics.record(.with { $0.event = event })
            #expect(again.duplicates == 1, "the same event id is acknowledged, not counted again")
            #expect(try await metrics.summary().overall.handoffsTotal == 1)
        }
    }
}
