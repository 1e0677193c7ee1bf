/// The one place payment data is taken out of text, before anything stores, evaluates, routes, logs or shows it.
///
/// - A card number: 13 to 19 digits, written as figures (with spaces or dashes between groups) or spoken as digit
///   words ("four one one one ..."), that passes the Luhn check, becomes `[card ending 1111]`. Digit runs that fail
///   Luhn stay as they are: account numbers and phone numbers are not card numbers.
/// - A security code, 3 or 4 digits after "CVV", "CVC", "CSC", "security code" or "card verification" (and an
///   optional "is", "code", "number" or punctuation), becomes `[security code removed]`.
package enum Redactor {
    /// `text` with every card number and security code replaced.
    package static func redact(_ text: String) -> String {
        let tokens = Self.tokens(text)
        guard tokens.contains(where: { $0.digits != nil }) else {
            return text
        }
        var replacements: [(range: Range<String.Index>, with: String)] = []
        var index = 0
        while index < tokens.count {
            if let keyword = Self.securityKeywordLength(tokens, at: index) {
                var next = index + keyword
                while next < tokens.count, Self.fillers.contains(tokens[next].lowered) {
                    next += 1
                }
                if let end = Self.digitRun(tokens, from: next, count: 3...4) {
                    replacements.append((tokens[next].range.lowerBound..<tokens[end].range.upperBound, Self.codeText))
                    index = end + 1
                    continue
                }
            }
            if let (end, last4) = Self.card(tokens, from: index) {
                replacements.append(
                    (tokens[index].range.lowerBound..<tokens[end].range.upperBound, "[card ending \(last4)]")
                )
                index = end + 1
                continue
            }
            index += 1
        }
        guard !replacements.isEmpty else {
            return text
        }
        var result = ""
        var cursor = text.startIndex
        for replacement in replacements {
            result += text[cursor..<replacement.range.lowerBound]
            result += replacement.with
            cursor = replacement.range.upperBound
        }
        result += text[cursor...]
        return result
    }

    static let codeText = "[security code removed]"

    /// A word or a group of figures, with where it is in the text.
    struct Token {
        let range: Range<String.Index>
        let lowered: String
        /// The digits it stands for: a group of figures, or one digit word.
        let digits: String?
    }

    static let digitWords: [String: String] = [
        "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
        "six": "6", "seven": "7", "eight": "8", "nine": "9",
    ]

    static let fillers: Set<String> = ["is", "it's", "its", "code", "number", "of", "was", "the", "my"]

    /// Splits on everything but letters, figures and apostrophes; separators between groups (spaces, dashes,
    /// commas, dots) are what lets a card be written in groups. A figure next to a letter also ends a word
    /// ("4111abc" is two tokens), so that digits never hide in words. It works on the UTF-8 bytes: every
    /// non-ASCII byte counts as a letter, and it splits only at ASCII bytes, so every token is whole characters.
    static func tokens(_ text: String) -> [Token] {
        var tokens: [Token] = []
        let utf8 = text.utf8
        var start: String.Index?
        var startIsDigit = false
        func close(at end: String.Index) {
            guard let begin = start else {
                return
            }
            start = nil
            let word = text[begin..<end]
            if startIsDigit {
                tokens.append(Token(range: begin..<end, lowered: String(word), digits: String(word)))
                return
            }
            let lowered = word.lowercased()
            tokens.append(Token(range: begin..<end, lowered: lowered, digits: Self.digitWords[lowered]))
        }
        var index = utf8.startIndex
        while index < utf8.endIndex {
            let byte = utf8[index]
            let isDigit = byte >= 0x30 && byte <= 0x39
            let isWord =
                isDigit || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x27
                || byte >= 0x80
            if !isWord {
                close(at: index)
            } else if start != nil && isDigit != startIsDigit {
                close(at: index)
                start = index
                startIsDigit = isDigit
            } else if start == nil {
                start = index
                startIsDigit = isDigit
            }
            index = utf8.index(after: index)
        }
        close(at: utf8.endIndex)
        return tokens
    }

    /// How many tokens a security-code keyword at `index` spans, or nil.
    static func securityKeywordLength(_ tokens: [Token], at index: Int) -> Int? {
        let word = tokens[index].lowered
        if ["cvv", "cvc", "csc", "cvv2", "cvc2", "cid"].contains(word) {
            return 1
        }
        guard index + 1 < tokens.count else {
            return nil
        }
        let next = tokens[index + 1].lowered
        if (word == "security" && (next == "code" || next == "number"))
            || (word == "card" && next == "verification")
        {
            return 2
        }
        return nil
    }

    /// The last token of a run of digit tokens starting at `from` whose digits number within `count`, taking as
    /// many tokens as fit; nil when none.
    static func digitRun(_ tokens: [Token], from: Int, count: ClosedRange<Int>) -> Int? {
        var digits = 0
        var end: Int?
        var index = from
        while index < tokens.count, let group = tokens[index].digits {
            digits += group.count
            if digits > count.upperBound {
                break
            }
            if count.contains(digits) {
                end = index
            }
            index += 1
        }
        return end
    }

    /// The longest run of digit tokens from `from` that holds a Luhn-valid 13 to 19 digit number: its last token
    /// and the number's last four digits.
    static func card(_ tokens: [Token], from: Int) -> (end: Int, last4: String)? {
        guard tokens[from].digits != nil else {
            return nil
        }
        var number = ""
        var found: (Int, String)?
        var index = from
        while index < tokens.count, let group = tokens[index].digits {
            number += group
            if number.count > 19 {
                break
            }
            if number.count >= 13 && Self.luhn(number) {
                found = (index, String(number.suffix(4)))
            }
            index += 1
        }
        return found
    }

    static func luhn(_ number: String) -> Bool {
        var sum = 0
        for (position, character) in number.reversed().enumerated() {
            guard var digit = character.wholeNumberValue else {
                return false
            }
            if position % 2 == 1 {
                digit *= 2
                if digit > 9 {
                    digit -= 9
                }
            }
            sum += digit
        }
        return sum % 10 == 0
    }
}

extension Character {
    var isASCIIDigit: Bool {
        self.isASCII && self.isNumber
    }
}
