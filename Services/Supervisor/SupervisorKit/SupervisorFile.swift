import Yams

/// The optional `supervisor.yaml` beside the Procfile: the default grace period and start window, and
/// per-process overrides of either.
///
/// ```yaml
/// grace: 10          # seconds a process gets after SIGTERM before SIGKILL (default 10, or --grace)
/// start_window: 60   # seconds a start may take to become READY before it counts as failed (default 60)
/// processes:
///   router:
///     grace: 20
///     start_window: 120
/// ```
package struct SupervisorFile: Equatable, Sendable {
    var grace: Double?
    var processGrace: [String: Double] = [:]
    var startWindow: Double?
    var processStartWindow: [String: Double] = [:]

    /// Parses `text`, refusing unknown keys, wrong types and processes the Procfile does not name, each with
    /// `file:line:column`.
    package static func parse(
        _ text: String,
        file: String,
        processes: Set<String>
    ) throws(ConfigurationFileError)
        -> SupervisorFile
    {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationFileError(file: file, line: Self.line(of: error), "not valid YAML: \(error)")
        } catch {
            throw ConfigurationFileError(file: file, line: 1, "not valid YAML: \(error)")
        }
        var result = SupervisorFile()
        guard let root else {
            return result  // an empty file
        }
        let top = try Self.mapping(root, file: file, what: "the top level")
        for (key, value) in top {
            switch key.string {
            case "grace":
                result.grace = try Self.seconds(value, file: file, what: "grace")
            case "start_window":
                result.startWindow = try Self.seconds(value, file: file, what: "start_window")
            case "processes":
                for (nameNode, settings) in try Self.mapping(value, file: file, what: "processes") {
                    let name = nameNode.string ?? ""
                    guard processes.contains(name) else {
                        throw Self.error(
                            nameNode,
                            file: file,
                            "no process named '\(name)' in the Procfile; known: \(processes.sorted().joined(separator: ", "))"
                        )
                    }
                    for (settingKey, settingValue) in try Self.mapping(settings, file: file, what: name) {
                        switch settingKey.string {
                        case "grace":
                            result.processGrace[name] = try Self.seconds(
                                settingValue,
                                file: file,
                                what: "\(name).grace"
                            )
                        case "start_window":
                            result.processStartWindow[name] = try Self.seconds(
                                settingValue,
                                file: file,
                                what: "\(name).start_window"
                            )
                        default:
                            throw Self.error(
                                settingKey,
                                file: file,
                                "unknown key '\(settingKey.string ?? "")' for process \(name); expected grace or "
                                    + "start_window"
                            )
                        }
                    }
                }
            default:
                throw Self.error(
                    key,
                    file: file,
                    "unknown key '\(key.string ?? "")'; expected grace, start_window or processes"
                )
            }
        }
        return result
    }

    private static func mapping(_ node: Node, file: String, what: String) throws(ConfigurationFileError) -> Node.Mapping
    {
        guard let mapping = node.mapping else {
            throw Self.error(node, file: file, "\(what) must be a mapping of keys to values")
        }
        return mapping
    }

    private static func seconds(_ node: Node, file: String, what: String) throws(ConfigurationFileError) -> Double {
        guard let seconds = node.float, seconds > 0, seconds <= 3600 else {
            throw Self.error(node, file: file, "\(what) must be a number of seconds between 0 and 3600")
        }
        return seconds
    }

    private static func error(_ node: Node, file: String, _ reason: String) -> ConfigurationFileError {
        var error = ConfigurationFileError(file: file, line: node.mark?.line ?? 1, reason)
        error.column = node.mark?.column
        return error
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return 1
        }
    }
}
