package import BatonRuntime
import Foundation
import HummingbirdBcrypt
import Yams

/// A person who may sign in to the desk (`config/agents.yaml`).
package struct Agent: Equatable, Sendable {
    package enum Role: String, Sendable {
        /// Sees the briefs of their destination and works them.
        case agent
        /// Also sees the operations dashboard (`/ops`).
        case supervisor
    }

    package var id: String
    package var name: String
    /// The destination whose briefs they see; a supervisor may have none (the dashboard only).
    package var destination: String?
    package var role: Role
    /// The bcrypt hash of their sign-in token; the token itself is never stored.
    package var tokenHash: String

    /// The hash `agents.yaml` stores for `token` (bcrypt, cost 10: about 50 ms to check a sign-in).
    package static func hash(token: String) -> String {
        Bcrypt.hash(token, cost: 10)
    }

    /// Whether `token` is this agent's (bcrypt's comparison).
    package func signs(in token: String) -> Bool {
        Bcrypt.verify(token, hash: self.tokenHash)
    }
}

/// Reads `agents.yaml` and validates it, collecting every problem with its line and column and what was expected.
package enum AgentsFile {
    /// The file's name in the configuration directory.
    package static let name = "agents.yaml"

    /// The agents in `text`, by id; throws ``InvalidConfigFile`` listing every problem found.
    package static func parse(_ text: String, file: String) throws(InvalidConfigFile) -> [String: Agent] {
        var yaml = YAMLReader(file: file)
        let agents = Self.read(text, &yaml)
        guard yaml.problems.isEmpty else {
            throw InvalidConfigFile(problems: yaml.problems)
        }
        return agents
    }

    /// The agents in `directory/agents.yaml`; a missing file is no agents (nobody can sign in, and the desk says so).
    package static func load(from directory: String) throws -> [String: Agent]? {
        let path = (directory as NSString).appendingPathComponent(Self.name)
        guard FileManager.default.fileExists(atPath: path) else {
            return nil
        }
        return try Self.parse(try TextFile.read(path), file: path)
    }

    private static func read(_ text: String, _ yaml: inout YAMLReader) -> [String: Agent] {
        guard let root = yaml.root(of: text, expecting: "agents: a list of the people who may sign in"),
            let top = yaml.mapping(root, "the file")
        else {
            return [:]
        }
        let fields = yaml.fields(of: top, known: ["agents"], in: "the file")
        guard let node = fields["agents"] else {
            yaml.report(at: root, "missing 'agents'; expected a list of agents")
            return [:]
        }
        guard let list = yaml.sequence(node, "agents") else {
            return [:]
        }
        var agents: [String: Agent] = [:]
        var firstLine: [String: Int] = [:]
        for item in list {
            guard let agent = Self.agent(item, &yaml) else {
                continue
            }
            if let first = firstLine[agent.id] {
                yaml.report(at: item, "duplicate agent id '\(agent.id)' (first on line \(first)); ids are unique")
            } else {
                firstLine[agent.id] = item.mark?.line ?? 0
                agents[agent.id] = agent
            }
        }
        return agents
    }

    private static func agent(_ item: Node, _ yaml: inout YAMLReader) -> Agent? {
        guard let mapping = yaml.mapping(item, "an agent") else {
            return nil
        }
        let known = ["id", "name", "destination", "role", "token_hash"]
        let fields = yaml.fields(of: mapping, known: known, in: "an agent")
        let id = yaml.string(fields["id"], "id", required: true, in: item)
        let name = yaml.string(fields["name"], "name", required: true, in: item)
        let destination = yaml.string(fields["destination"], "destination", in: item)
        let role = yaml.choice(fields["role"], "role", of: ["agent", "supervisor"], in: item).flatMap(Agent.Role.init)
        let hash = yaml.string(fields["token_hash"], "token_hash", required: true, in: item)
        if fields["role"] == nil {
            yaml.report(at: item, "missing 'role'; expected agent or supervisor")
        }
        if let hash, !Self.isBcrypt(hash) {
            yaml.report(
                at: fields["token_hash"],
                "token_hash is not a bcrypt hash ($2b$ and 56 more characters); make one with `batonctl hash-token`"
            )
        }
        if role == .agent, destination == nil {
            yaml.report(at: item, "agent '\(id ?? "?")' has no 'destination'; an agent works one destination's briefs")
        }
        guard let id, let name, let role, let hash, Self.isBcrypt(hash) else {
            return nil
        }
        return Agent(id: id, name: name, destination: destination, role: role, tokenHash: hash)
    }

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost, `$`, then 53 characters of salt and hash.
    static func isBcrypt(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 60, text.hasPrefix("$2"), bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$")
        else {
            return false
        }
        return ["a", "b", "y"].contains(Character(UnicodeScalar(bytes[2])))
            && bytes[4...5].allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
