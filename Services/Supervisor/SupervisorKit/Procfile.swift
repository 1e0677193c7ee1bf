/// The processes a supervisor runs, read from a Procfile in foreman's format.
///
/// Each line is `name: command`; a line whose first non-blank character is `#` is a comment; blank lines are
/// ignored. Names are letters, digits, `-` and `_`, and unique.
package struct Procfile: Equatable, Sendable {
    /// One process: its name, the shell command that runs it, and the line it came from.
    struct Entry: Equatable, Sendable {
        var name: String
        var command: String
        var line: Int
    }

    /// The processes, in the file's order (the order they start in).
    var entries: [Entry]

    /// Parses `text`; `file` names the file in errors (`Procfile:3: ...`).
    package static func parse(_ text: String, file: String = "Procfile") throws(ConfigurationFileError) -> Procfile {
        var entries: [Entry] = []
        var firstLine: [String: Int] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") {
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw ConfigurationFileError(file: file, line: number, "expected 'name: command', got '\(line)'")
            }
            let name = line[..<colon].trimmingWhitespace()
            let command = line[line.index(after: colon)...].trimmingWhitespace()
            guard !name.isEmpty else {
                throw ConfigurationFileError(file: file, line: number, "missing process name before ':'")
            }
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw ConfigurationFileError(
                    file: file,
                    line: number,
                    "process name '\(name)' may contain only letters, digits, '-' and '_'"
                )
            }
            guard !command.isEmpty else {
                throw ConfigurationFileError(file: file, line: number, "process '\(name)' has no command")
            }
            if let first = firstLine[name] {
                throw ConfigurationFileError(
                    file: file,
                    line: number,
                    "duplicate process name '\(name)' (first on line \(first))"
                )
            }
            firstLine[name] = number
            entries.append(Entry(name: name, command: command, line: number))
        }
        return Procfile(entries: entries)
    }
}

/// Variables from a `.env` file: `KEY=VALUE` lines, `#` comments, blank lines, values optionally in single or
/// double quotes, and an optional leading `export `.
package enum DotEnv {
    /// Parses `text`; `file` names the file in errors (`.env:2: ...`).
    package static func parse(_ text: String, file: String = ".env") throws(ConfigurationFileError) -> [String: String]
    {
        var variables: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            var line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") {
                continue
            }
            if line.hasPrefix("export ") {
                line = line.dropFirst("export ".count).trimmingWhitespace()
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationFileError(file: file, line: number, "expected KEY=VALUE, got '\(line)'")
            }
            let key = line[..<equals].trimmingWhitespace()
            guard let first = key.first, first == "_" || (first.isASCII && first.isLetter),
                key.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            else {
                throw ConfigurationFileError(
                    file: file,
                    line: number,
                    "'\(key)' is not a variable name (letters, digits and '_', not starting with a digit)"
                )
            }
            var value = line[line.index(after: equals)...].trimmingWhitespace()
            if let quote = value.first, quote == "\"" || quote == "'" {
                guard value.count >= 2, value.last == quote else {
                    throw ConfigurationFileError(
                        file: file,
                        line: number,
                        "the value of \(key) has no closing \(quote)"
                    )
                }
                value = String(value.dropFirst().dropLast())
            }
            variables[key] = value
        }
        return variables
    }
}

/// A line of a configuration file is wrong: `file:line: what is wrong`.
package struct ConfigurationFileError: Error, Equatable, Sendable, CustomStringConvertible {
    var file: String
    var line: Int
    var column: Int?
    var reason: String

    init(file: String, line: Int, _ reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    package var description: String {
        "\(self.file):\(self.line):\(self.column.map { "\($0):" } ?? "") \(self.reason)"
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingWhitespace() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = self.firstIndex(where: { !isBlank($0) }) else {
            return ""
        }
        let end = self.lastIndex(where: { !isBlank($0) })!
        return String(self[start...end])
    }
}
