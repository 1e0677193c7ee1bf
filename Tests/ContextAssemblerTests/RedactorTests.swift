import Testing

@testable import ContextAssemblerKit

@Suite("Redactor")
struct RedactorTests {
    /// Test numbers of several brands, all Luhn-valid.
    static let cards: [(number: String, last4: String)] = [
        ("4111111111111111", "1111"),  // Visa
        ("5555555555554444", "4444"),  // Mastercard
        ("378282246310005", "0005"),  // American Express, 15 digits
        ("6011111111111117", "1117"),  // Discover
        ("30569309025904", "5904"),  // Diners Club, 14 digits
        ("3530111333300000", "0000"),  // JCB
        ("4222222222222", "2222"),  // Visa, 13 digits
    ]

    @Test("test card numbers of several brands become [card ending NNNN], in figures, groups and digit words")
    func cardsAreMasked() {
        for card in Self.cards {
            #expect(Redactor.redact("card \(card.number) thanks") == "card [card ending \(card.last4)] thanks")
            let grouped = stride(from: 0, to: card.number.count, by: 4).map { start in
                String(card.number.dropFirst(start).prefix(4))
            }
            #expect(Redactor.redact(grouped.joined(separator: " ")) == "[card ending \(card.last4)]")
            #expect(
                Redactor.redact("it's " + grouped.joined(separator: "-") + ".") == "it's [card ending \(card.last4)]."
            )
        }
        let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        let spoken = "4111111111111111".map { words[$0.wholeNumberValue!] }.joined(separator: " ")
        #expect(Redactor.redact("my card is \(spoken) okay") == "my card is [card ending 1111] okay")
        #expect(Redactor.redact("Four one one one 1111 one one one one 1111") == "[card ending 1111]")
    }

    @Test("near misses that fail Luhn, and short digit runs, stay as they are")
    func nearMissesStay() {
        for text in [
            "4111111111111112", "5555 5555 5555 4445", "account 12345678", "call +353 1 555 0134",
            "378282246310006", "order 2026-12-02",
        ] {
            #expect(Redactor.redact(text) == text, "\(text)")
        }
    }

    @Test("a security code after CVV, CVC or security code is removed, in figures or words")
    func securityCodes() {
        #expect(Redactor.redact("the CVV is 123") == "the CVV is [security code removed]")
        #expect(Redactor.redact("cvc: 4567 and that's it") == "cvc: [security code removed] and that's it")
        #expect(Redactor.redact("security code seven three one") == "security code [security code removed]")
        #expect(
            Redactor.redact("card 4111 1111 1111 1111 security code 999")
                == "card [card ending 1111] security code [security code removed]"
        )
        #expect(Redactor.redact("I have 123 apples") == "I have 123 apples")
    }
}

@Suite("Repeats")
struct RepeatsTests {
    let facts: [(slot: String, value: String)] = [
        ("identity.name", "Jane Doe"), ("account.id", "AC-1234-5678"), ("card.last4", "[card ending 1111]"),
        ("consent", "yes"),
    ]

    @Test("a restated account number or name is found after normalising digits, case and spacing")
    func restatedFacts() {
        #expect(Repeats.restated(in: "my account is ac 1234 5678", facts: self.facts) == ["account.id"])
        #expect(Repeats.restated(in: "It's JANE   doe, again", facts: self.facts) == ["identity.name"])
        #expect(
            Repeats.restated(in: "a c one two three four five six seven eight", facts: self.facts) == ["account.id"]
        )
    }

    @Test("a fact the brief lacked, a short value, or an unrelated turn is not a repeat")
    func notRepeats() {
        #expect(Repeats.restated(in: "my postcode is D02 X285", facts: self.facts).isEmpty)
        #expect(Repeats.restated(in: "yes please", facts: self.facts).isEmpty)
        #expect(Repeats.restated(in: "Janet Doer called", facts: self.facts).isEmpty)
    }
}

@Suite("Briefing")
struct BriefingTests {
    @Test("a phone number is masked to its country code and last three digits")
    func masking() {
        #expect(Briefing.mask("+353871234567") == "+353 ••• ••• 567")
        #expect(Briefing.mask("") == "")
    }
}
