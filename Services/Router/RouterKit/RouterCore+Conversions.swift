package import BatonProto
import BatonRuntime
import Foundation

/// Between the router's model and its messages, ids and times.
extension RouterCore {
    package static func handoff(_ request: Baton_Routing_V1_RouteRequest) -> Handoff {
        Handoff(
            callID: request.callID,
            handoffID: request.handoffID,
            category: request.category,
            skills: request.skills,
            urgent: request.priority == .urgent
        )
    }

    static func request(_ handoff: Handoff) -> Baton_Routing_V1_RouteRequest {
        var request = Baton_Routing_V1_RouteRequest()
        request.callID = handoff.callID
        request.handoffID = handoff.handoffID
        request.category = handoff.category
        request.skills = handoff.skills
        request.priority = handoff.urgent ? .urgent : .normal
        return request
    }

    static func message(_ reservation: Reservation, endedAt: Date?, detail: String) -> Baton_Routing_V1_Reservation {
        var message = Baton_Routing_V1_Reservation()
        message.id = reservation.id
        message.handoffID = reservation.handoff.handoffID
        message.callID = reservation.handoff.callID
        message.destinationID = reservation.destinationID
        message.state = reservation.state
        message.createdAtUnixMs = Self.milliseconds(reservation.createdAt)
        message.expiresAtUnixMs = Self.milliseconds(reservation.expiresAt)
        message.endedAtUnixMs = endedAt.map(Self.milliseconds) ?? 0
        message.detail = detail
        return message
    }

    static func problem(_ problem: ConfigProblem) -> Baton_Routing_V1_Problem {
        var message = Baton_Routing_V1_Problem()
        message.file = problem.file
        message.line = UInt32(problem.line)
        message.column = UInt32(problem.column)
        message.message = problem.message
        return message
    }

    /// A reservation's state in words: the router's error messages and `batonctl explain` say it alike.
    package static func name(_ state: Baton_Routing_V1_Reservation.State) -> String {
        switch state {
        case .held: "held"
        case .accepted: "accepted"
        case .declined: "declined"
        case .released: "released"
        case .expired: "expired"
        default: "unknown"
        }
    }

    /// `rsv-` and the time in ms then random bits, in hex: ids made later sort later, so that the reservations'
    /// index grows at its end instead of touching a random page for every insert.
    static func reservationID(at time: Date, random: inout some RandomNumberGenerator) -> String {
        let milliseconds = UInt64(max(0, Self.milliseconds(time)))
        let bits = random.next()
        let digits = Array("0123456789abcdef".utf8)
        var id = Array("rsv-".utf8)
        id.reserveCapacity(33)
        for shift in stride(from: 44, through: 0, by: -4) {
            id.append(digits[Int(milliseconds >> UInt64(shift) & 0xF)])
        }
        id.append(UInt8(ascii: "-"))
        for shift in stride(from: 60, through: 0, by: -4) {
            id.append(digits[Int(bits >> UInt64(shift) & 0xF)])
        }
        return String(decoding: id, as: UTF8.self)
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
