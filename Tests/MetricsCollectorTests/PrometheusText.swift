/// A strict reader of Prometheus' text exposition format (version 0.0.4), enough to prove that Export's output
/// parses: every line is a HELP, a TYPE or a sample; every sample belongs to a family typed before it; label
/// values are quoted; values are numbers; a histogram's buckets are cumulative and end at +Inf, which equals its
/// count.
enum PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var type: String
        var help: String?
        var samples: [Sample] = []
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> [String: Family] {
        guard text.hasSuffix("\n") else {
            throw Invalid(description: "the text does not end with a newline")
        }
        var families: [String: Family] = [:]
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            func fail(_ why: String) -> Invalid { Invalid(description: "line \(number): \(why): \(line)") }
            if line.isEmpty {
                continue
            }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3)
                guard words.count >= 3, words[0] == "#" else {
                    continue  // a plain comment
                }
                let name = String(words[2])
                guard Self.isMetricName(name) else {
                    throw fail("'\(name)' is not a metric name")
                }
                if words[1] == "TYPE" {
                    guard words.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3])
                    else {
                        throw fail("unknown type")
                    }
                    guard families[name]?.samples.isEmpty ?? true, families[name]?.type.isEmpty ?? true else {
                        throw fail("a second TYPE for \(name)")
                    }
                    families[name, default: Family(type: "")].type = String(words[3])
                } else if words[1] == "HELP" {
                    families[name, default: Family(type: "")].help = words.count == 4 ? String(words[3]) : ""
                }
                continue
            }
            let sample = try Self.sample(line, fail: fail)
            let suffixes = ["_bucket", "_sum", "_count"]
            let family =
                families[sample.name] != nil
                ? sample.name
                : suffixes.lazy.compactMap { suffix in
                    sample.name.hasSuffix(suffix) ? String(sample.name.dropLast(suffix.count)) : nil
                }.first { families[$0]?.type == "histogram" }
            guard let family, let type = families[family]?.type, !type.isEmpty else {
                throw fail("a sample of a family with no TYPE before it")
            }
            families[family]!.samples.append(sample)
        }
        for (name, family) in families where family.type == "histogram" {
            let buckets = family.samples.filter { $0.name == name + "_bucket" }
            guard let last = buckets.last, last.labels["le"] == "+Inf" else {
                throw Invalid(description: "\(name): the last bucket is not le=\"+Inf\"")
            }
            guard zip(buckets, buckets.dropFirst()).allSatisfy({ $0.value <= $1.value }) else {
                throw Invalid(description: "\(name): the buckets are not cumulative")
            }
            guard family.samples.first(where: { $0.name == name + "_count" })?.value == last.value else {
                throw Invalid(description: "\(name): _count differs from the +Inf bucket")
            }
        }
        return families
    }

    private static func sample(_ line: Substring, fail: (String) -> Invalid) throws -> Sample {
        var rest = line[...]
        let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
        guard Self.isMetricName(name) else {
            throw fail("no metric name")
        }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                guard !label.isEmpty, !label.first!.isNumber, rest.dropFirst(label.count).hasPrefix("=\"") else {
                    throw fail("a label is not name=\"value\"")
                }
                rest = rest.dropFirst(label.count + 2)
                var value = ""
                while let character = rest.first, character != "\"" {
                    if character == "\\" {
                        rest = rest.dropFirst()
                        guard let escaped = rest.first, ["\\", "\"", "n"].contains(escaped) else {
                            throw fail("a bad escape in a label value")
                        }
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(character)
                    }
                    rest = rest.dropFirst()
                }
                guard rest.first == "\"" else {
                    throw fail("an unterminated label value")
                }
                rest = rest.dropFirst()
                labels[label] = value
                if rest.first == "," {
                    rest = rest.dropFirst()
                } else if rest.first != "}" {
                    throw fail("labels not separated by commas")
                }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard rest.first == " ", (1...2).contains(fields.count) else {
            throw fail("expected a space, a value and an optional timestamp")
        }
        let text = String(fields[0])
        guard let value = ["+Inf": Double.infinity, "-Inf": -.infinity, "NaN": .nan][text] ?? Double(text) else {
            throw fail("'\(text)' is not a value")
        }
        return Sample(name: name, labels: labels, value: value)
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" || first == ":" else {
            return false
        }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == ":" }
    }
}
