import ArgumentParser
import BatonRuntime
import DeskKit

/// `batonctl hash-token`: a sign-in token for an agent and the hash `agents.yaml` stores for it.
struct HashToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token",
        abstract: "Make an agent's sign-in token and the token_hash for config/agents.yaml.",
        discussion: """
            With no TOKEN, a new random one (128 bits, as 32 hex digits). Prints the token, to give to the agent, \\
            and its bcrypt hash, to put in agents.yaml; the desk never stores the token itself.
            """
    )

    @Argument(help: "The token to hash (default: a new random one). At least 12 characters.") var token: String?

    func validate() throws {
        if let token, token.count < 12 {
            throw ValidationError("the token has \(token.count) characters; expected at least 12")
        }
    }

    func run() async throws {
        var generator = SystemRandomNumberGenerator()
        let token = self.token ?? (0..<2).map { _ in Self.hex(generator.next()) }.joined()
        Output.line("token: \(token)")
        Output.line("token_hash: \"\(Agent.hash(token: token))\"")
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
