import BatonRuntime
import Foundation

/// Where a handoff can go: an in-house team or a partner BPO.
package struct Destination: Equatable, Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case inHouse = "in_house"
        case partner
    }

    /// Whether the destination's desktops show the brief before the call connects.
    enum Context: String, Sendable, CaseIterable {
        case live
        case none
    }

    var id: String
    var kind: Kind
    var skills: Set<String>
    var certifications: Set<String>
    var hours: Hours
    /// The address the telephony transfers to (a SIP URI, say).
    var transfer: String
    /// How many agents the destination staffs when open.
    var agents: Int
    var averageHandleSeconds: Double
    var costPerMinute: Double
    var context: Context
}

/// The routing policy: targets, preferences, and the rules of each handoff category.
struct Policy: Equatable, Sendable {
    /// Prefer in-house while its prediction is within this.
    var targetLiveHumanSeconds: Double = 5
    /// A destination predicted to take longer than this is not offered.
    var maxLiveHumanSeconds: Double = HandoffTargets.maxLiveHumanSeconds
    var prefer: Destination.Kind? = .inHouse
    /// From transfer to "hello" when a free agent takes the call at once.
    var ringAndGreetSeconds: Double = 3
    /// Whether each destination's ring-and-greet time is learned from the hellos reported (``RingAndGreet``), in
    /// place of `ringAndGreetSeconds`, once there are enough of them.
    var learnRingAndGreet = true
    /// A reservation neither accepted nor released within this expires.
    var reservationTimeoutSeconds: Double = 30
    /// Availability older than this is stale, and the router's own bookkeeping counts instead.
    var availabilityMaxAgeSeconds: Double = 60
    var categories: [String: CategoryRule] = [:]
}

/// What a handoff category demands of its destination.
struct CategoryRule: Equatable, Sendable {
    /// Certifications the destination must hold (`payment` requires `pci`).
    var requires: Set<String> = []
    /// Overrides the policy's preference for this category.
    var prefer: Destination.Kind?
    /// Destinations whose desktops cannot show the brief before connecting are not offered.
    var requiresLiveContext = false
}

/// Opening hours in a time zone: weekly ranges, and dates on which the destination does not open.
///
/// A range whose closing time is not after its opening time runs past midnight: `22:00`-`06:00` on Friday is open
/// from Friday 22:00 to Saturday 06:00. A closed date cancels the ranges that open on that date. No ranges at all
/// means always open.
struct Hours: Equatable, Sendable {
    struct Range: Equatable, Sendable {
        /// 1 = Monday ... 7 = Sunday.
        var days: Set<Int>
        /// Minutes after local midnight.
        var opens: Int
        var closes: Int
    }

    /// A local calendar date.
    struct Day: Hashable, Sendable {
        var year: Int
        var month: Int
        var day: Int

        /// The civil date `days` after 1970-01-01 (Howard Hinnant's days-to-civil algorithm).
        init(daysSinceEpoch days: Int) {
            let shifted = days + 719_468
            let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
            let dayOfEra = shifted - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let monthIndex = (5 * dayOfYear + 2) / 153
            self.day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
            self.month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
            self.year = yearOfEra + era * 400 + (self.month <= 2 ? 1 : 0)
        }

        init(year: Int, month: Int, day: Int) {
            (self.year, self.month, self.day) = (year, month, day)
        }
    }

    var timeZone: TimeZone
    var ranges: [Range] = []
    var closedDates: Set<Day> = []

    static func always() -> Hours {
        Hours(timeZone: TimeZone(identifier: "UTC")!)
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = self.timeZone
        return calendar
    }

    /// Whether the destination is open at `date`.
    func isOpen(at date: Date) -> Bool {
        guard !self.ranges.isEmpty else {
            return true
        }
        // Local time by arithmetic on the zone's offset at `date`: a Calendar costs microseconds per call, and
        // a decision asks this of every destination.
        let local = Int((date.timeIntervalSince1970).rounded(.down)) + self.timeZone.secondsFromGMT(for: date)
        let days = Int((Double(local) / 86_400).rounded(.down))
        let minute = (local - days * 86_400) / 60
        let weekday = Self.isoWeekday(daysSinceEpoch: days)
        let yesterdayWeekday = weekday == 1 ? 7 : weekday - 1
        for range in self.ranges {
            let overnight = range.closes <= range.opens
            if range.days.contains(weekday), minute >= range.opens, overnight || minute < range.closes,
                self.closedDates.isEmpty || !self.closedDates.contains(Day(daysSinceEpoch: days))
            {
                return true
            }
            if overnight, range.days.contains(yesterdayWeekday), minute < range.closes,
                self.closedDates.isEmpty || !self.closedDates.contains(Day(daysSinceEpoch: days - 1))
            {
                return true
            }
        }
        return false
    }

    /// 1 = Monday ... 7 = Sunday; 1970-01-01 was a Thursday.
    private static func isoWeekday(daysSinceEpoch days: Int) -> Int {
        ((days % 7 + 7) % 7 + 3) % 7 + 1
    }

    /// The first moment after `date` (within two weeks) at which the destination opens, or nil if it never does.
    func nextOpening(after date: Date) -> Date? {
        guard !self.ranges.isEmpty else {
            return nil
        }
        let calendar = self.calendar
        var best: Date?
        for offset in 0...14 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: date) else {
                continue
            }
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            guard !self.closedDates.contains(Day(year: parts.year!, month: parts.month!, day: parts.day!)) else {
                continue
            }
            let weekday = Self.isoWeekday(parts.weekday!)
            for range in self.ranges where range.days.contains(weekday) {
                var opening = DateComponents()
                (opening.year, opening.month, opening.day) = (parts.year, parts.month, parts.day)
                (opening.hour, opening.minute) = (range.opens / 60, range.opens % 60)
                if let at = calendar.date(from: opening), at > date, best.map({ at < $0 }) ?? true {
                    best = at
                }
            }
            if best != nil {
                return best
            }
        }
        return best
    }

    /// Foundation's weekday (1 = Sunday) as ISO's (1 = Monday ... 7 = Sunday).
    private static func isoWeekday(_ weekday: Int) -> Int {
        weekday == 1 ? 7 : weekday - 1
    }
}
