import Testing

@testable import ContextAssemblerKit

@Suite("Doorbell")
struct DoorbellTests {
    static func elapsed(_ body: () async -> Void) async -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        await body()
        return clock.now - start
    }

    @Test("a ring while nobody waits is kept: the next wait returns at once, and the one after waits again")
    func ringIsKept() async {
        let bell = Doorbell()
        bell.ring()
        bell.ring()
        #expect(await Self.elapsed { await bell.wait(atMost: .seconds(30)) } < .seconds(10))
        // Two rings are one: this wait is not woken by the second.
        #expect(await Self.elapsed { await bell.wait(atMost: .milliseconds(300)) } >= .milliseconds(300))
    }

    @Test("a wait that times out leaves the bell working: the next wait blocks again, and a ring still wakes it")
    func timeoutLeavesItWorking() async {
        let bell = Doorbell()
        for _ in 0..<3 {
            #expect(await Self.elapsed { await bell.wait(atMost: .milliseconds(200)) } >= .milliseconds(200))
        }
        let ringer = Task {
            try await Task.sleep(for: .milliseconds(100))
            bell.ring()
        }
        #expect(await Self.elapsed { await bell.wait(atMost: .seconds(30)) } < .seconds(10))
        ringer.cancel()
    }

    @Test("cancelling the waiting task ends its wait")
    func cancellationEndsTheWait() async {
        let bell = Doorbell()
        let waiter = Task { await Self.elapsed { await bell.wait(atMost: .seconds(30)) } }
        try? await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        #expect(await waiter.value < .seconds(10))
        // The bell still works for the next waiter.
        bell.ring()
        #expect(await Self.elapsed { await bell.wait(atMost: .seconds(30)) } < .seconds(10))
    }
}
