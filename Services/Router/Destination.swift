import Foundation

/// Where a handoff can go: an in-house team or a partner BPO.
struct Destination: Equatable, Sendable {
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
    var maxLiveHumanSeconds: Double = 8
    var prefer: Destination.Kind? = .inHouse
    /// From transfer to "hello" when a free agent takes the call at once.
    var ringAndGreetSeconds: Double = 3
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
    struct Day: Hashable, Sendable, Comparable, CustomStringConvertible {
        var year: Int
        var month: Int
        var day: Int

        static func < (lhs: Day, rhs: Day) -> Bool {
            (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
        }

        var description: String {
            "\(self.year)-\(Self.two(self.month))-\(Self.two(self.day))"
        }

        static func two(_ number: Int) -> String {
            number < 10 ? "0\(number)" : "\(number)"
        }
    }

    var timeZone: TimeZone
    var ranges: [Range] = []
    var closedDates: Set<Day> = []

    static func always(in timeZone: TimeZone = TimeZone(identifier: "UTC")!) -> Hours {
        Hours(timeZone: timeZone)
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
        let calendar = self.calendar
        let local = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: date)
        let today = Day(year: local.year!, month: local.month!, day: local.day!)
        let weekday = Self.isoWeekday(local.weekday!)
        let minute = local.hour! * 60 + local.minute!
        let yesterdayDate = calendar.date(byAdding: .day, value: -1, to: date)!
        let yesterdayParts = calendar.dateComponents([.year, .month, .day], from: yesterdayDate)
        let yesterday = Day(year: yesterdayParts.year!, month: yesterdayParts.month!, day: yesterdayParts.day!)
        let yesterdayWeekday = weekday == 1 ? 7 : weekday - 1
        for range in self.ranges {
            let overnight = range.closes <= range.opens
            if range.days.contains(weekday), !self.closedDates.contains(today), minute >= range.opens,
                overnight || minute < range.closes
            {
                return true
            }
            if overnight, range.days.contains(yesterdayWeekday), !self.closedDates.contains(yesterday),
                minute < range.closes
            {
                return true
            }
        }
        return false
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
