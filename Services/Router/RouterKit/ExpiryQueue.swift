import Foundation

/// Held reservations by the time they expire, earliest first, so that expiring the due ones costs what is due
/// rather than a scan of every open reservation.
///
/// Entries are not removed when a reservation is accepted, released or declined: the caller checks each due entry
/// against its open reservations. Every reservation is held for the policy's timeout, so entries nearly always
/// arrive in order and are appended; one made after a reload shortened the timeout is inserted in its place.
struct ExpiryQueue {
    private var entries: [(at: Date, id: String)] = []
    /// Entries before this index have been taken.
    private var head = 0

    mutating func insert(_ id: String, expiringAt at: Date) {
        guard let last = self.entries.last, last.at > at else {
            self.entries.append((at, id))
            return
        }
        // The first entry after `at`, by binary search over the untaken entries.
        var low = self.head
        var high = self.entries.count
        while low < high {
            let middle = (low + high) / 2
            if self.entries[middle].at <= at {
                low = middle + 1
            } else {
                high = middle
            }
        }
        self.entries.insert((at, id), at: low)
    }

    /// Takes the ids of every entry due at `now`, earliest first.
    mutating func takeDue(at now: Date) -> [String] {
        var due: [String] = []
        while self.head < self.entries.count, self.entries[self.head].at <= now {
            due.append(self.entries[self.head].id)
            self.head += 1
        }
        if self.head > 1024 && self.head * 2 > self.entries.count {
            self.entries.removeFirst(self.head)
            self.head = 0
        }
        return due
    }
}
