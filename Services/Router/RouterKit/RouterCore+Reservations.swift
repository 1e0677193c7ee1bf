import BatonProto
import BatonRPC
import BatonRuntime
import Foundation
import GRDB
import Logging
import Synchronization

/// The life of a reservation after Route made it: Accept, Release, Decline (which routes again) and expiry, each by
/// the rule in ``RouterCore``: applied in memory, written, undone if the write fails.
extension RouterCore {
    /// What a change of a reservation does under the lock: apply itself to the open reservation in memory, with the
    /// commit its write must finish, or answer at once with nothing to change.
    fileprivate enum Change<Value> {
        case applied(Value, Commit)
        case answer(Value)
    }

    /// An open reservation with no write in flight, or why there is none to change.
    private enum Lookup {
        case open(Reservation)
        /// Another call's write on this reservation is in flight: wait for it, then look again.
        case busy(Commit)
        /// Not open, and not being closed: the store says what became of it.
        case closed
    }

    private static func find(_ id: String, in state: State) -> Lookup {
        if let closing = state.closing[id] {
            return .busy(closing.commit)
        }
        guard let reservation = state.ledger.open[id] else {
            return .closed
        }
        if let pending = reservation.pending {
            return .busy(pending)
        }
        return .open(reservation)
    }

    /// Changes reservation `id` by the rule every change follows: `apply` changes it in memory under the lock (or
    /// answers at once), then `write` stores the change, undoing it if the write fails. A write in flight on the
    /// same reservation is waited for first, and the reservation looked at again; one that is not open is answered
    /// from the store (FAILED_PRECONDITION with its state, or NOT_FOUND).
    private func change<Value, Answer>(
        _ id: String,
        apply: (inout State, Reservation, Date) -> Change<Value>,
        answer: ((Value) -> Answer)? = nil,
        write: (Value, Commit, Date) async throws -> Answer
    ) async throws -> Answer {
        while true {
            let now = self.now()
            // What was found, and when it was open, what the change made of it.
            let (found, changed) = self.state.withLock { state -> (Lookup, Change<Value>?) in
                let found = Self.find(id, in: state)
                guard case .open(let reservation) = found else {
                    return (found, nil)
                }
                return (found, apply(&state, reservation, now))
            }
            switch (found, changed) {
            case (_, .answer(let value)?):
                guard let answer else {
                    preconditionFailure("a change that answers at once needs an answer")
                }
                return answer(value)
            case (_, .applied(let value, let commit)?):
                return try await write(value, commit, now)
            case (.busy(let commit), nil):
                _ = try? await commit.outcome()
            case (.open, nil), (.closed, nil):
                throw try await self.closedOrUnknown(id)
            }
        }
    }

    /// A hello reported later than this after the routing decision is not a ring-and-greet time (router.proto).
    static let longestRingAndGreet: Double = 600

    func accept(_ id: String) async throws -> Baton_Routing_V1_Reservation {
        try await self.change(id) { state, open, now in
            guard open.state == .held else {
                return .answer(open)  // accepted already: the same answer again
            }
            var reservation = open
            let commit = Commit()
            reservation.state = .accepted
            reservation.acceptedAt = now
            reservation.pending = commit
            state.ledger.replace(reservation)
            return .applied(reservation, commit)
        } answer: { reservation in
            Self.message(reservation, endedAt: nil, detail: "")
        } write: { accepted, commit, _ in
            try await self.write(commit, "the acceptance of reservation \(id)") { db in
                try RouterStore.update(accepted, in: db)
            } done: { state, succeeded in
                var reservation = accepted
                reservation.pending = nil
                if !succeeded {
                    reservation.state = .held
                    reservation.acceptedAt = nil
                }
                state.ledger.replace(reservation)
            }
            return Self.message(accepted, endedAt: nil, detail: "")
        }
    }

    /// Releases reservation `id`. A CONNECTED release of a reservation made while an agent was free, with the
    /// time the human said hello (`greetedAt`, Unix ms; 0: not reported), teaches the router its destination's
    /// ring-and-greet time (``RingAndGreet``).
    func release(
        _ id: String,
        outcome: Baton_Routing_V1_ReleaseOutcome,
        greetedAt: Int64 = 0
    ) async throws -> Baton_Routing_V1_Reservation {
        let detail: String
        switch outcome {
        case .connected: detail = "connected"
        case .abandoned: detail = "abandoned"
        case .failed: detail = "failed"
        default:
            throw RPCError.invalidArgument("outcome is unset; expected CONNECTED, ABANDONED or FAILED")
        }
        return try await self.change(id) { state, open, _ in
            if outcome == .connected, greetedAt > 0, open.record.answeredAtOnce {
                let seconds = Double(greetedAt) / 1000 - open.createdAt.timeIntervalSince1970
                if seconds >= 0, seconds <= Self.longestRingAndGreet {
                    state.ledger.observe(ringAndGreet: seconds, at: open.destinationID)
                }
            }
            return .applied(open, Self.close(open, in: &state))
        } write: { open, commit, now in
            var released = open
            released.state = .released
            released.pending = nil
            try await self.write(commit, "the release of reservation \(id)") { [released] db in
                try RouterStore.update(released, endedAt: now, detail: detail, in: db)
            } done: { state, succeeded in
                Self.reopen(id, in: &state, if: !succeeded)
            }
            return Self.message(released, endedAt: now, detail: detail)
        }
    }

    /// Declines reservation `id` and routes its handoff again, never back to a destination that declined it; the
    /// end of the old reservation and the new decision are one write.
    func decline(_ id: String, reason: String) async throws -> Decided {
        try await self.change(id) { state, declined, now in
            let commit = Self.close(declined, in: &state)
            let excluded = declined.excluded.union([declined.destinationID])
            var made = Self.decide(declined.handoff, excluded: excluded, in: &state, now: now)
            if var next = made.reservation {
                next.pending = commit
                state.ledger.insert(next)
                made.reservation = next
            }
            return .applied((declined: declined, made: made), commit)
        } write: { value, commit, now in
            var ended = value.declined
            ended.state = .declined
            let detail = reason.isEmpty ? "declined" : "declined: \(reason)"
            return try await self.commit(
                value.made,
                commit,
                request: Self.request(value.declined.handoff),
                ending: (ended, now, detail)
            ) { state, succeeded in
                if !succeeded, let next = value.made.reservation {
                    state.ledger.remove(next.id)
                }
                Self.reopen(id, in: &state, if: !succeeded)
            }
        }
    }

    /// Expires held reservations whose time is up, in one write; returns how many.
    @discardableResult
    func expire() async throws -> Int {
        let now = self.now()
        let commit = Commit()
        let expired = self.state.withLock { state -> [Reservation] in
            state.ledger.due(at: now).compactMap { id in
                // Accepted, released or declined since, or changing now: not to expire (a held reservation whose
                // write failed is put back in the queue by its undo).
                guard let open = state.ledger.open[id], open.state == .held, open.pending == nil,
                    state.closing[id] == nil
                else {
                    return nil
                }
                state.ledger.remove(id)
                state.closing[id] = (open, commit)
                return open
            }
        }
        guard !expired.isEmpty else {
            commit.finish(.success(0))
            return 0
        }
        let ended = expired.map { reservation in
            var ended = reservation
            ended.state = .expired
            return ended
        }
        try await self.write(commit, "the expiry of \(expired.count) reservations") { db in
            for reservation in ended {
                try RouterStore.update(reservation, endedAt: now, detail: "not accepted or released in time", in: db)
            }
        } done: { state, succeeded in
            for reservation in expired {
                Self.reopen(reservation.id, in: &state, if: !succeeded)
            }
        }
        self.logger.debug("router: reservations expired unaccepted", metadata: ["baton.count": "\(expired.count)"])
        return expired.count
    }

    /// Takes `reservation` out of the ledger into `closing`, with the commit of the write that ends it.
    private static func close(_ reservation: Reservation, in state: inout State) -> Commit {
        let commit = Commit()
        state.ledger.remove(reservation.id)
        state.closing[reservation.id] = (reservation, commit)
        return commit
    }

    /// Ends reservation `id`'s closing; puts it back in the ledger, as it was, when `undo` (its write failed).
    private static func reopen(_ id: String, in state: inout State, if undo: Bool) {
        guard let closing = state.closing.removeValue(forKey: id), undo else {
            return
        }
        state.ledger.insert(closing.reservation)
    }

    /// Writes a change already applied in memory, then runs `done` under the lock (told whether the write
    /// succeeded, so that it can undo) and finishes `commit`. Throws the write's `UNAVAILABLE`.
    private func write(
        _ commit: Commit,
        _ what: String,
        _ body: @escaping @Sendable (Database) throws -> Void,
        done: (inout State, _ succeeded: Bool) -> Void
    ) async throws {
        do {
            try await self.stored(what, body)
        } catch let error as RPCError {
            self.state.withLock { done(&$0, false) }
            commit.finish(.failure(error))
            throw error
        }
        self.state.withLock { done(&$0, true) }
        commit.finish(.success(0))
    }

    /// The error for a reservation that is not open: FAILED_PRECONDITION naming its state, or NOT_FOUND.
    private func closedOrUnknown(_ id: String) async throws -> RPCError {
        guard !id.isEmpty else {
            return RPCError.invalidArgument("reservation_id is empty; expected the id Route returned")
        }
        guard
            let stored = try await self.read("reservation \(id)", { try RouterStore.state(ofReservation: id, in: $0) })
        else {
            return RPCError.notFound("no reservation '\(id)'")
        }
        return RPCError(
            code: .failedPrecondition,
            message: "reservation '\(id)' is \(Self.name(stored)) already; expected a held reservation"
        )
    }
}
