public import BatonRPC
public import Yams

/// One problem in a configuration file: `file:line:column: what is wrong, and what was expected`.
public struct ConfigProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        "\(self.file):\(self.line):\(self.column): \(self.message)"
    }
}

/// A configuration file that was refused, with every problem found in it. A call that hands over such a file
/// (ValidateWorkflow, say) ends `INVALID_ARGUMENT` with the problems.
public struct InvalidConfigFile: Error, Equatable, Sendable, CustomStringConvertible, RPCErrorConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public var description: String {
        self.problems.map(\.description).joined(separator: "\n")
    }

    public var rpcError: RPCError {
        RPCError.invalidArgument(self.description)
    }
}

/// Reads values out of a YAML document and collects, rather than throws, every problem found, each at its node's
/// line and column, so that one pass tells the author everything to fix. A reader that returns nil has reported why.
public struct YAMLReader {
    public let file: String
    public private(set) var problems: [ConfigProblem] = []

    public init(file: String) {
        self.file = file
    }

    /// The document's root node; nil, with a problem, when the text is not YAML or is empty (`expecting` says what
    /// the file should hold).
    public mutating func root(of text: String, expecting: String) -> Node? {
        do {
            guard let root = try Yams.compose(yaml: text) else {
                self.report(at: nil, "the file is empty; expected \(expecting)")
                return nil
            }
            return root
        } catch let error as YamlError {
            let (mark, problem): (Mark?, String) =
                switch error {
                case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                    .composer(_, let problem, let mark, _):
                    (mark, problem)
                default: (nil, "\(error)")
                }
            self.problems.append(
                ConfigProblem(
                    file: self.file,
                    line: mark?.line ?? 1,
                    column: mark?.column ?? 1,
                    message: "not valid YAML: \(problem)"
                )
            )
        } catch {
            self.report(at: nil, "not valid YAML: \(error)")
        }
        return nil
    }

    /// The mapping's values by key; an unknown key is reported with the list of known ones.
    public mutating func fields(of mapping: Node.Mapping, known: [String], in what: String) -> [String: Node] {
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string, known.contains(name) else {
                self.report(
                    at: key,
                    "unknown key '\(key.string ?? "?")' in \(what); expected \(known.joined(separator: ", "))"
                )
                continue
            }
            fields[name] = value
        }
        return fields
    }

    public mutating func mapping(_ node: Node, _ what: String) -> Node.Mapping? {
        guard let mapping = node.mapping else {
            self.report(at: node, "\(what) must be a mapping (key: value lines), not \(Self.show(node))")
            return nil
        }
        return mapping
    }

    public mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard let list = node.sequence else {
            self.report(at: node, "\(what) must be a list, not \(Self.show(node))")
            return nil
        }
        return Array(list)
    }

    /// Non-empty text; a missing node is reported only when `required`.
    public mutating func string(_ node: Node?, _ what: String, required: Bool = false, in parent: Node) -> String? {
        guard let node else {
            if required {
                self.report(at: parent, "missing '\(what)'")
            }
            return nil
        }
        guard node.scalar != nil, let text = node.string, !text.isEmpty else {
            self.report(at: node, "\(what) must be text, not \(Self.show(node))")
            return nil
        }
        return text
    }

    /// A required scalar as written (text or a number).
    public mutating func scalarText(_ node: Node?, _ what: String, in parent: Node) -> String? {
        guard let node else {
            self.report(at: parent, "missing '\(what)'")
            return nil
        }
        guard let scalar = node.scalar else {
            self.report(at: node, "\(what) must be text or a number, not \(Self.show(node))")
            return nil
        }
        return scalar.string
    }

    /// A list of names; nil when absent or invalid.
    public mutating func strings(_ node: Node?, _ what: String) -> [String]? {
        guard let node else {
            return nil
        }
        guard let list = self.sequence(node, what) else {
            return nil
        }
        var result: [String] = []
        for item in list {
            guard item.scalar != nil, let text = item.string, !text.isEmpty else {
                self.report(at: item, "\(what) must be a list of names, not \(Self.show(item))")
                return nil
            }
            result.append(text)
        }
        return result
    }

    public mutating func nonEmptyStrings(_ node: Node, _ what: String) -> [String]? {
        guard let list = self.strings(node, what) else {
            return nil
        }
        guard !list.isEmpty else {
            self.report(at: node, "\(what) needs at least one name")
            return nil
        }
        return list
    }

    /// A number of at least `minimum`; nil when absent or invalid.
    public mutating func number(_ node: Node?, _ what: String, atLeast minimum: Double = 0) -> Double? {
        guard let node else {
            return nil
        }
        guard node.scalar != nil, node.bool == nil, let number = node.float, number.isFinite else {
            self.report(at: node, "\(what) must be a number, not \(Self.show(node))")
            return nil
        }
        guard number >= minimum else {
            self.report(at: node, "\(what) must be at least \(Self.format(minimum)), not \(Self.format(number))")
            return nil
        }
        return number
    }

    /// true or false; nil when absent or invalid.
    public mutating func flag(_ node: Node?, _ what: String) -> Bool? {
        guard let node else {
            return nil
        }
        guard node.scalar != nil, let flag = node.bool else {
            self.report(at: node, "\(what) must be true or false, not \(Self.show(node))")
            return nil
        }
        return flag
    }

    /// One of `choices`; nil when absent or invalid.
    public mutating func choice(_ node: Node?, _ what: String, of choices: [String], in parent: Node) -> String? {
        guard let text = self.string(node, what, in: parent) else {
            return nil
        }
        guard choices.contains(text) else {
            self.report(at: node, "\(what) '\(text)' is not one of \(choices.joined(separator: ", "))")
            return nil
        }
        return text
    }

    public mutating func report(at node: Node?, _ message: String) {
        self.problems.append(
            ConfigProblem(
                file: self.file,
                line: node?.mark?.line ?? 1,
                column: node?.mark?.column ?? 1,
                message: message
            )
        )
    }

    /// A node as an error message shows it: a scalar's text, or what kind of node it is.
    public static func show(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "'\(scalar.string)'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? "\(Int64(number))" : "\(number)"
    }
}
