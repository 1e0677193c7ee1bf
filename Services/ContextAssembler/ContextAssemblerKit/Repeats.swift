/// Whether a caller's turn states again a fact the human's brief already held.
///
/// Both sides are normalised the same way: case folded, digit words made figures, and spacing and punctuation
/// ignored. A value with figures in it (an account number, an amount, a date) is found when its figures and letters
/// occur in that order anywhere in the turn ("AC-1234 5678" in "it's ac 12345678"); a value of words only (a name)
/// is found when its words occur together in the turn. Values shorter than 3 characters, and flags such as "yes",
/// are never matched: they occur in ordinary speech.
package enum Repeats {
    /// The slots of `facts` whose value `turn` states again, in the facts' order.
    package static func restated(in turn: String, facts: [(slot: String, value: String)]) -> [String] {
        let words = Self.words(turn)
        let collapsed = words.joined()
        let spaced = " " + words.joined(separator: " ") + " "
        return facts.compactMap { fact in
            let valueWords = Self.words(fact.value)
            let value = valueWords.joined()
            guard value.count >= 3, !["yes", "no", "true", "false"].contains(value) else {
                return nil
            }
            if value.contains(where: \.isASCIIDigit) {
                return collapsed.contains(value) ? fact.slot : nil
            }
            return spaced.contains(" " + valueWords.joined(separator: " ") + " ") ? fact.slot : nil
        }
    }

    /// The text's words, lowercased, with digit words as figures; a redaction such as "[card ending 1111]" keeps
    /// its words.
    static func words(_ text: String) -> [String] {
        Redactor.tokens(text).map { $0.digits ?? $0.lowered.filter { $0 != "'" } }
    }
}
