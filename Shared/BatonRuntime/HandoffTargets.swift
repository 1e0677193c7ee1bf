/// The times every handoff is held to, in one place (docs/ARCHITECTURE.md): the human should say hello 4 to 6 s
/// after the gate fired; past 8 s the caller notices, and past 20 s they are lost. The router's policy and the
/// metrics collector's judgement default to these; each can be configured apart (`destinations.yaml`'s policy,
/// `metrics-collector --max-live-human`).
public enum HandoffTargets {
    /// The window time-to-live-human should fall in, in seconds.
    public static let liveHumanWindowSeconds: ClosedRange<Double> = 4...6
    /// A greeting later than this after the gate fired makes a failover: the caller noticed the wait.
    public static let maxLiveHumanSeconds: Double = 8
    /// A caller kept waiting this long is lost.
    public static let lostAfterSeconds: Double = 20
}
