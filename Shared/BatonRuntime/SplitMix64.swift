/// A fast generator of 64-bit numbers (SplitMix64): for numbers that must differ, not be secret, and for tests
/// that must see the same sequence again from the same seed. The system's generator makes a system call for every
/// number.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// The sequence of `seed`.
    public init(seed: UInt64) {
        self.state = seed
    }

    /// A sequence seeded from the system's generator.
    public init() {
        self.init(seed: UInt64.random(in: 0...UInt64.max))
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
