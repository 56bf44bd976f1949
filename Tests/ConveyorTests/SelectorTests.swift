import Testing
@testable import Conveyor

// Every table below is a list of (selector, expected three-valued result) run against `fixture()`;
// `nil` means UNKNOWN. Each case is chosen so that a wrong implementation gives another result.

/// The message the tables are evaluated against.
private func fixture() throws -> Message {
    var message = Message.text("x")
    try message.setProperty(Int32(3), forName: "a")
    try message.setProperty(Int32(2), forName: "b")
    try message.setProperty(Int32(3), forName: "c")
    try message.setProperty(Int32(17), forName: "age")
    try message.setProperty(Int32(100), forName: "hundred")
    try message.setProperty(Int64(5), forName: "five")
    try message.setProperty(Int8(7), forName: "byteValue")
    try message.setProperty(Int16(8), forName: "shortValue")
    try message.setProperty(10.5, forName: "price")
    try message.setProperty(10.0, forName: "ten")
    try message.setProperty(0.5, forName: "half")
    try message.setProperty(Float(1.5), forName: "f")
    try message.setProperty(Float(1.1), forName: "f11")
    try message.setProperty("Alice", forName: "name")
    try message.setProperty("Bob", forName: "Name")
    try message.setProperty("abc", forName: "s")
    try message.setProperty("5", forName: "digits")
    try message.setProperty("10%", forName: "code")
    try message.setProperty("100", forName: "other")
    try message.setProperty("a_c", forName: "under")
    try message.setProperty("it's", forName: "quote")
    try message.setProperty("café", forName: "cafe")
    try message.setProperty("aabxabababc", forName: "seq")
    try message.setProperty("go 🚀!", forName: "rocket")
    try message.setProperty("cafe\u{301}", forName: "decomposed")
    try message.setProperty("\u{301}", forName: "mark")
    try message.setProperty(true, forName: "flag")
    try message.setProperty(false, forName: "off")
    message.type = "x"
    message.priority = 7
    message.deliveryMode = .persistent
    message.messageID = MessageID(origin: "broker", sequence: 42)
    message.timestamp = 1_700_000_000_000
    message.deliveryCount = 2
    return message
}

/// Checks `evaluate` and `matches` of `text` against the fixture.
private func check(_ text: String, _ expected: Bool?) throws {
    let selector = try Selector(text)
    let message = try fixture()
    #expect(selector.evaluate(message) == expected, "\(text)")
    #expect(selector.matches(message) == (expected == true), "\(text)")
}

@Suite("Selector evaluation")
struct SelectorEvaluationTests {
    @Test("comparison operators on numbers, strings and booleans", arguments: [
        ("a = 3", true), ("a = 4", false),
        ("a <> 4", true), ("a <> 3", false),
        ("a < 4", true), ("a < 3", false),
        ("a <= 3", true), ("a <= 2", false),
        ("a > 2", true), ("a > 3", false),
        ("a >= 3", true), ("a >= 4", false),
        ("name = 'Alice'", true), ("name = 'alice'", false), ("name <> 'Bob'", true), ("name <> 'Alice'", false),
        ("flag = TRUE", true), ("flag <> FALSE", true), ("off = TRUE", false), ("flag = off", false),
        ("byteValue = 7", true), ("shortValue = 8", true), ("five = 5", true),
        ("'' = ''", true), ("cafe = 'café'", true),
        // Selector text is read by Unicode scalar: a combining mark does not merge with the quote before it.
        ("mark = '\u{301}'", true), ("mark LIKE '\u{301}'", true),
    ] as [(String, Bool?)])
    func comparisons(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("exact and approximate numbers compare numerically", arguments: [
        ("price > 10", true), ("price < 11", true), ("price = 10", false), ("ten = 10", true),
        ("a = 3.0", true), ("a < 3.5", true), ("f = 1.5", true), ("f > 1", true),
        ("price >= 10.5", true), ("price BETWEEN 10 AND 11", true),
    ] as [(String, Bool?)])
    func mixedNumbers(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("unlike types compare FALSE (JMS 3.1 §3.8.1.2); orderings of strings or booleans are unknown; never errors", arguments: [
        ("name = 1", false), ("a = 'x'", false), ("digits = 5", false), ("flag = 1", false), ("name = flag", false),
        ("name < s", nil), ("flag > off", nil), ("NOT (name = 1)", true), ("name <> 1", false),
    ] as [(String, Bool?)])
    func unlikeTypes(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("comparisons with NULL are unknown", arguments: [
        ("missing = 1", nil), ("missing <> 1", nil), ("missing > 0", nil), ("missing = missing", nil),
        ("missing = 'x'", nil), ("JMSCorrelationID = 'c'", nil),
    ] as [(String, Bool?)])
    func nullComparisons(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    // T is `a = 3`, F is `a = 4`, U is `missing = 1`.
    @Test("AND truth table", arguments: [
        ("a = 3 AND a = 3", true), ("a = 3 AND a = 4", false), ("a = 3 AND missing = 1", nil),
        ("a = 4 AND a = 3", false), ("a = 4 AND a = 4", false), ("a = 4 AND missing = 1", false),
        ("missing = 1 AND a = 3", nil), ("missing = 1 AND a = 4", false), ("missing = 1 AND missing = 1", nil),
    ] as [(String, Bool?)])
    func andTable(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("OR truth table", arguments: [
        ("a = 3 OR a = 3", true), ("a = 3 OR a = 4", true), ("a = 3 OR missing = 1", true),
        ("a = 4 OR a = 3", true), ("a = 4 OR a = 4", false), ("a = 4 OR missing = 1", nil),
        ("missing = 1 OR a = 3", true), ("missing = 1 OR a = 4", nil), ("missing = 1 OR missing = 1", nil),
    ] as [(String, Bool?)])
    func orTable(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("NOT truth table", arguments: [
        ("NOT a = 3", false), ("NOT a = 4", true), ("NOT missing = 1", nil), ("NOT NOT a = 3", true),
    ] as [(String, Bool?)])
    func notTable(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("NOT of an unknown comparison does not match")
    func notUnknownDoesNotMatch() throws {
        let selector = try Selector("NOT (missing = 1)")
        let message = try fixture()
        #expect(selector.evaluate(message) == nil)
        #expect(!selector.matches(message))
    }

    @Test("precedence: OR < AND < NOT < comparison < + - < * / < unary", arguments: [
        // a = 3 OR (b = 9 AND c = 9); grouping the OR first would give FALSE.
        ("a = 3 OR b = 9 AND c = 9", true),
        ("a = 9 AND b = 2 OR c = 3", true),
        // (NOT a = 3) AND b = 9; NOT applied to the AND would give TRUE.
        ("NOT a = 3 AND b = 9", false),
        ("NOT a = 3 OR a = 3", true),
        ("(a = 3 OR b = 9) AND c = 9", false),
        ("a + b * c = 9", true), ("(a + b) * c = 15", true),
        ("a - b - c = -2", true), ("12 / a / 2 = 2", true),
        ("-a * 2 = -6", true), ("a * 2 + 1 = 7", true), ("a * -2 = -6", true),
    ] as [(String, Bool?)])
    func precedence(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("arithmetic", arguments: [
        ("a + b = 5", true), ("a - b = 1", true), ("a * b = 6", true), ("a / b = 1", true),
        ("-a = -3", true), ("- -a = 3", true), ("+a = 3", true), ("-price = -10.5", true),
        ("7 / 2 = 3", true), ("7 / 2.0 = 3.5", true), ("a + 0.5 = 3.5", true), ("price * 2 = 21", true),
        ("shortValue + byteValue = 15", true),
        ("a / 0 = 1", nil), ("NOT (a / 0 = 1)", nil),
        ("a / 0.0 > 1000000", true), ("-a / 0.0 < -1000000", true),
        ("9223372036854775807 + a > 0", nil), ("-9223372036854775808 - a < 0", nil),
        ("name + 1 = 2", nil), ("-name = 1", nil), ("flag * 2 = 2", nil), ("missing + 1 = 1", nil),
    ] as [(String, Bool?)])
    func arithmetic(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("IS NULL and IS NOT NULL are never unknown", arguments: [
        ("missing IS NULL", true), ("missing IS NOT NULL", false),
        ("a IS NULL", false), ("a IS NOT NULL", true),
        ("JMSCorrelationID IS NULL", true), ("JMSType IS NOT NULL", true), ("JMSMessageID IS NULL", false),
        ("NOT missing IS NULL", false),
    ] as [(String, Bool?)])
    func isNull(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("LIKE with %, _ and ESCAPE, anchored at both ends", arguments: [
        ("name LIKE 'Alice'", true), ("name LIKE 'Alic'", false), ("name LIKE 'lice'", false),
        ("name LIKE 'A%'", true), ("name LIKE 'a%'", false), ("name LIKE '%ice'", true), ("name LIKE '%ic'", false),
        ("name LIKE '%lic%'", true), ("name LIKE '%x%'", false), ("name LIKE '%'", true), ("name LIKE ''", false),
        ("name LIKE 'Al_ce'", true), ("name LIKE 'Al_ice'", false),
        ("name LIKE '_____'", true), ("name LIKE '____'", false),
        ("name LIKE 'A%e'", true), ("name LIKE 'A%x'", false), ("name LIKE '%l%c%'", true), ("s LIKE 'a%%c'", true),
        ("seq LIKE '%ab%ab%c'", true), ("seq LIKE '%ab%abd%'", false),
        ("seq LIKE 'a%b_bc'", true), ("seq LIKE 'a%b_c'", false),
        ("cafe LIKE 'caf_'", true), ("cafe LIKE 'caf__'", false),
        ("cafe LIKE '%é'", true), ("quote LIKE 'it''_'", true),
        ("rocket LIKE 'go _!'", true), ("rocket LIKE '%🚀%'", true),
        ("rocket LIKE '%_!'", true), ("rocket LIKE 'go __!'", false),
        // LIKE compares Unicode scalars exactly (as Java compares UTF-16 units); = follows Swift String equality.
        ("decomposed LIKE 'café'", false), ("decomposed LIKE 'cafe_'", true), ("decomposed = 'café'", true),
        (#"code LIKE '10\%' ESCAPE '\'"#, true), (#"other LIKE '10\%' ESCAPE '\'"#, false), ("other LIKE '10%'", true),
        ("under LIKE 'a!_c' ESCAPE '!'", true), ("s LIKE 'a!_c' ESCAPE '!'", false), ("s LIKE 'a_c'", true),
        ("code LIKE '10!%' ESCAPE '!'", true), (#"s LIKE 'a\bc' ESCAPE '\'"#, true),
        ("code LIKE '10%%' ESCAPE '%'", true), ("other LIKE '10%%' ESCAPE '%'", false),
        ("code LIKE '%!%' ESCAPE '!'", true), ("name LIKE '%!%' ESCAPE '!'", false),
        ("name NOT LIKE 'B%'", true), ("name NOT LIKE 'A%'", false),
        ("missing LIKE '%'", nil), ("missing NOT LIKE 'A%'", nil), ("a LIKE '3'", nil), ("a NOT LIKE '3'", nil),
        ("JMSMessageID LIKE 'ID:%:42'", true),
    ] as [(String, Bool?)])
    func like(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("BETWEEN has inclusive bounds; NOT BETWEEN is its complement", arguments: [
        ("age BETWEEN 15 AND 19", true), ("age BETWEEN 17 AND 19", true), ("age BETWEEN 15 AND 17", true),
        ("age BETWEEN 18 AND 19", false), ("age BETWEEN 10 AND 16", false),
        ("age NOT BETWEEN 15 AND 19", false), ("age NOT BETWEEN 17 AND 19", false),
        ("age NOT BETWEEN 18 AND 19", true), ("age NOT BETWEEN 10 AND 16", true),
        ("age BETWEEN a * 5 AND 20", true), ("age BETWEEN 15 AND 19 AND a = 3", true),
        ("price BETWEEN 10 AND 10.5", true), ("age BETWEEN 16.5 AND 17.5", true),
        ("missing BETWEEN 1 AND 2", nil), ("missing NOT BETWEEN 1 AND 2", nil), ("name BETWEEN 1 AND 2", false),
        // age >= NULL AND age <= 10 is UNKNOWN AND FALSE; age < NULL OR age > 10 is UNKNOWN OR TRUE.
        ("age BETWEEN missing AND 10", false), ("age NOT BETWEEN missing AND 10", true),
        ("age BETWEEN missing AND 20", nil),
    ] as [(String, Bool?)])
    func between(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("IN and NOT IN; a NULL identifier matches neither", arguments: [
        ("name IN ('Alice', 'Bob')", true), ("name IN ('Bob')", false), ("name IN ('alice')", false),
        ("name NOT IN ('Bob')", true), ("name NOT IN ('Bob', 'Alice')", false),
        ("missing IN ('a')", nil), ("missing NOT IN ('a')", nil),
        ("a IN ('3')", nil), ("a NOT IN ('3')", nil),
        ("JMSType IN ('x', 'y')", true), ("quote IN ('it''s')", true), ("JMSDeliveryMode IN ('PERSISTENT')", true),
    ] as [(String, Bool?)])
    func inList(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("header fields", arguments: [
        ("JMSPriority > 5", true), ("JMSPriority > 7", false), ("JMSPriority = 7", true),
        ("JMSDeliveryMode = 'PERSISTENT'", true), ("JMSDeliveryMode = 'NON_PERSISTENT'", false),
        ("JMSType = 'x'", true), ("JMSType = 'y'", false),
        ("JMSCorrelationID IS NULL", true),
        ("JMSMessageID = 'ID:broker:42'", true), ("JMSMessageID = 'ID:broker:43'", false),
        ("JMSTimestamp > 1600000000000", true), ("JMSTimestamp = 1700000000000L", true),
        ("JMSXDeliveryCount = 2", true),
        // Not a header selectors may name: an (unset) property.
        ("JMSRedelivered IS NULL", true),
    ] as [(String, Bool?)])
    func headers(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("headers of an unsent message")
    func unsentHeaders() throws {
        var message = Message.text("x")
        message.deliveryMode = .nonPersistent
        message.correlationID = "req-1"
        #expect(try Selector("JMSMessageID IS NULL").matches(message))
        #expect(try Selector("JMSType IS NULL").matches(message))
        #expect(try Selector("JMSDeliveryMode = 'NON_PERSISTENT'").matches(message))
        #expect(try Selector("JMSCorrelationID = 'req-1'").matches(message))
        #expect(try Selector("JMSPriority = 4").matches(message))
        #expect(try Selector("JMSTimestamp = 0").matches(message))
        #expect(try Selector("JMSMessageID = 'ID:x:1'").evaluate(message) == nil)
    }

    @Test("keywords are case-insensitive, identifiers case-sensitive", arguments: [
        ("a = 3 and b = 2", true), ("a = 3 AnD b = 2", true), ("a = 4 or b = 2", true), ("not a = 4", true),
        ("name like 'A%'", true), ("name Not In ('x')", true), ("age between 15 aNd 19", true),
        ("missing iS nOt NuLl", false), (#"code LIKE '10\%' escape '\'"#, true), ("tRuE", true), ("flag = true", true),
        ("Name = 'Bob'", true), ("name = 'Bob'", false), ("NAME IS NULL", true),
        ("jmspriority = 7", nil), ("JMSPRIORITY IS NULL", true),
    ] as [(String, Bool?)])
    func caseSensitivity(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("literals", arguments: [
        ("quote = 'it''s'", true), ("s = 'ab''c'", false), ("'it''s' = quote", true),
        ("hundred = 1e2", true), ("1E2 = 100", true), ("hundred = 100.0", true), ("hundred = 1.0E+2", true),
        ("f = 1.5f", true), ("f = 1.5F", true), ("f = 1.5d", true), ("f = 15e-1", true),
        // A float literal is read as a float and widened, as in Java: 1.1f equals the float 1.1, 1.1 does not.
        ("f11 = 1.1f", true), ("f11 = 1.1", false),
        ("half = .5", true), ("five = 5.", true), ("2.5E-1 = .25", true), ("five = 5f", true), ("five = 5D", true),
        ("a = 3L", true), ("a = 3l", true), ("a = 0x3", true), ("hundred = 0X64", true), ("hundred = 0144", true),
        ("hundred = 0x64L", true), ("0 = 0", true),
        ("-9223372036854775808 < 9223372036854775807", true), ("0xFFFFFFFFFFFFFFFFL = -1", true),
        ("TRUE", true), ("FALSE", false), ("NOT FALSE", true), ("TRUE = TRUE", true), ("TRUE <> FALSE", true),
    ] as [(String, Bool?)])
    func literals(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("boolean properties as conditions", arguments: [
        ("flag", true), ("off", false), ("NOT off", true), ("NOT flag", false), ("flag AND a = 3", true),
        ("off OR flag", true), ("(flag)", true),
        ("name", nil), ("a", nil), ("missing", nil), ("NOT missing", nil), ("NOT name", nil),
    ] as [(String, Bool?)])
    func booleanProperties(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("identifiers: Java identifier characters, keywords only as whole words", arguments: [
        ("$price IS NULL", true), ("_x IS NULL", true), ("ANDY IS NULL", true), ("INx IS NULL", true),
        ("nullable IS NULL", true), ("prix€ IS NULL", true), ("ın IS NULL", true), ("straße IS NULL", true),
        ("a1 IS NULL", true),
    ] as [(String, Bool?)])
    func identifiers(_ text: String, _ expected: Bool?) throws {
        try check(text, expected)
    }

    @Test("one parsed selector evaluates each message on its own")
    func reuse() throws {
        let selector = try Selector("a BETWEEN 2 AND 4 AND kind LIKE 'o%'")
        var results: [Bool?] = []
        for (value, kind) in [(1, "order"), (3, "order"), (3, "quote"), (5, "order")] {
            var message = Message.text("x")
            try message.setProperty(Int32(value), forName: "a")
            try message.setProperty(kind, forName: "kind")
            results.append(selector.evaluate(message))
        }
        results.append(selector.evaluate(Message.empty))
        #expect(results == [false, true, false, false, nil])
    }

    @Test("whitespace of any kind separates tokens")
    func whitespace() throws {
        #expect(try Selector("\ta\n=\r3  AND\u{0C}b<>1 ").matches(fixture()))
        #expect(try Selector("(a=3)AND(b<>1)").matches(fixture()))
        #expect(try !Selector("a=3 AND b<=1").matches(fixture()))
    }
}

@Suite("Selector parsing")
struct SelectorParsingTests {
    @Test("an error names the position and what was expected")
    func errorMessage() {
        let error = #expect(throws: ConveyorError.self) { try Selector("a = ") }
        #expect(error?.code == .invalidSelector)
        #expect(error?.message == "invalid selector 'a = ' at position 5: expected a value after '='")
    }

    @Test("invalid selectors are rejected", arguments: [
        ("a = ", 5, "expected a value after '='"),
        ("a == 1", 4, "expected a value after '=', found '='"),
        ("(a = 1", 7, "expected ')' to close the '(' at position 1"),
        ("((a = 1) OR b = 2", 18, "expected ')'"),
        ("a = 1)", 6, "no matching '('"),
        ("a IN ()", 7, "the IN list cannot be empty"),
        ("a IN ('x', 1)", 12, "expected a string literal in the IN list, found number 1"),
        ("a IN ('x',)", 11, "expected a string literal"),
        ("a IN ('x'", 10, "expected ',' or ')'"),
        ("a IN 'x'", 6, "expected '(' after IN"),
        ("a LIKE 'x' ESCAPE 'ab'", 19, "exactly one character"),
        ("a LIKE 'x' ESCAPE ''", 19, "exactly one character"),
        ("a LIKE 'x' ESCAPE", 18, "expected a one-character string after ESCAPE"),
        ("a LIKE 'x!' ESCAPE '!'", 8, "ends with its escape character"),
        ("a LIKE b", 8, "expected a string pattern after LIKE"),
        ("'abc'", 1, "expected a condition"),
        ("1 + 2", 1, "expected a condition"),
        ("JMSPriority", 1, "expected a condition"),
        ("a = 'unterminated", 5, "unterminated string literal"),
        ("AND = 1", 1, "keywords cannot be used as identifiers"),
        ("a = 1 AND OR = 2", 11, "keywords cannot be used as identifiers"),
        ("NULL IS NULL", 1, "use IS NULL or IS NOT NULL"),
        ("a = NULL", 5, "use IS NULL or IS NOT NULL"),
        ("a = 1 b", 7, "expected an operator, AND, OR or the end of the selector, found identifier 'b'"),
        ("a IS 1", 6, "expected NULL after 'IS'"),
        ("a IS NOT", 9, "expected NULL after 'IS NOT'"),
        ("a NOT = 1", 7, "expected BETWEEN, LIKE or IN after NOT"),
        ("a BETWEEN 1 OR 2", 13, "expected AND between the bounds"),
        ("a BETWEEN 1", 12, "expected AND between the bounds"),
        ("'a' = 1", 5, "cannot compare a string with a number"),
        ("JMSPriority = 'high'", 13, "cannot compare a number with a string"),
        ("TRUE = 1", 6, "cannot compare a boolean with a number"),
        ("'a' < 'b'", 5, "compares numbers only"),
        ("JMSType < 'b'", 9, "compares numbers only"),
        ("flag >= TRUE", 6, "compares numbers only"),
        ("JMSPriority LIKE '1%'", 1, "LIKE applies to strings"),
        ("JMSPriority IN ('1')", 1, "IN applies to strings"),
        ("1 LIKE 'a'", 1, "expected an identifier before LIKE"),
        ("TRUE IS NULL", 1, "expected an identifier before IS"),
        ("name BETWEEN 'a' AND 'z'", 14, "BETWEEN compares numbers only"),
        ("'a' + 1 = 2", 1, "'+' needs numbers"),
        ("-'a' = 1", 2, "unary '-' needs a number"),
        ("a = 1 AND 5", 11, "AND needs conditions"),
        ("5 OR a = 1", 1, "OR needs conditions"),
        ("NOT 5", 5, "NOT needs conditions"),
        ("a = 9223372036854775808", 5, "out of range for a long"),
        ("a = 0x", 5, "expected hexadecimal digits"),
        ("a = 0x10000000000000000", 5, "out of range for a long"),
        ("a = 09", 5, "not a valid octal number"),
        ("a = 1e400", 5, "out of range for a double"),
        ("a = 1abc", 6, "unexpected character 'a' after the number '1'"),
        ("a = 3AND b = 1", 6, "unexpected character 'A' after the number '3'"),
        ("a = 1.5x", 8, "unexpected character 'x' after the number '1.5'"),
        ("a = 1e", 7, "expected the digits of the exponent"),
        ("a # 1", 3, "unexpected character '#'"),
        ("a != 1", 3, "write '<>' for not equal"),
        ("a = 1 AND", 10, "expected an expression after 'AND'"),
        ("()", 2, "expected an expression after '('"),
        ("", 1, "expected an expression"),
    ])
    func rejects(_ text: String, _ position: Int, _ expectation: String) {
        let error = #expect(throws: ConveyorError.self, "\(text)") { try Selector(text) }
        #expect(error?.code == .invalidSelector)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("invalid selector '\(text)' at position \(position): "), "\(message)")
        #expect(message.contains(expectation), "\(message)")
    }

    @Test("nesting is limited so that no text can exhaust the stack", arguments: [
        String(repeating: "(", count: 10_000) + "a = 1" + String(repeating: ")", count: 10_000),
        String(repeating: "NOT ", count: 10_000) + "flag",
        String(repeating: "-", count: 10_000) + "a = 1",
        "a" + String(repeating: " + a", count: 200) + " = 1",
    ])
    func tooDeep(_ text: String) {
        let error = #expect(throws: ConveyorError.self) { try Selector(text) }
        #expect(error?.code == .invalidSelector)
        #expect(error?.message.contains("nests too deeply") == true)
    }

    @Test("nesting within the limit, and AND/OR chains of any length, are accepted")
    func deepButValid() throws {
        let message = try fixture()
        let parenthesized = String(repeating: "(", count: 100) + "a = 3" + String(repeating: ")", count: 100)
        #expect(try Selector(parenthesized).matches(message))
        let negated = String(repeating: "NOT ", count: 100) + "flag"
        #expect(try Selector(negated).evaluate(message) == true)
        let terms = (0..<5_000).map { "a = \($0 + 10)" }
        #expect(try Selector(terms.joined(separator: " OR ")).evaluate(message) == false)
        #expect(try Selector((terms + ["a = 3"]).joined(separator: " OR ")).matches(message))
        #expect(try Selector((terms + ["missing = 1"]).joined(separator: " OR ")).evaluate(message) == nil)
        let conjunction = (0..<5_000).map { _ in "a = 3" }.joined(separator: " AND ")
        #expect(try Selector(conjunction).matches(message))
    }

    @Test("nil, empty and whitespace-only text is no selector", arguments: [nil, "", "   ", " \t\n "] as [String?])
    func emptyIsNone(_ text: String?) throws {
        #expect(try Selector.parse(text) == nil)
    }

    @Test("parse(_:) parses other text, and reports invalid text")
    func parseOptional() throws {
        let selector = try Selector.parse(" a = 3 ")
        #expect(selector?.expression == " a = 3 ")
        #expect(try selector?.matches(fixture()) == true)
        let error = #expect(throws: ConveyorError.self) { try Selector.parse("a =") }
        #expect(error?.code == .invalidSelector)
    }

    @Test("equality, hashing and description follow the text")
    func identity() throws {
        let one = try Selector("a = 1")
        let same = try Selector("a = 1")
        let spaced = try Selector("a=1")
        #expect(one == same)
        #expect(one != spaced)
        #expect(Set([one, same, spaced]).count == 2)
        #expect(one.description == "a = 1")
        #expect("\(spaced)" == "a=1")
        #expect(one.expression == "a = 1")
    }
}
