/// Durations as people type them on a command line: a whole number and a unit, `90s`, `30m`, `1h`, `7d`.
public enum DurationText {
    /// The seconds `text` says, or 0 for `all` (no limit); nil when it is neither.
    public static func seconds(_ text: String) -> UInt32? {
        if text == "all" {
            return 0
        }
        let units: [Character: UInt32] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let count = UInt32(text.dropLast()), count > 0 else {
            return nil
        }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
        return overflow ? nil : seconds
    }
}
