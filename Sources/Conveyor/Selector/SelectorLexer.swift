/// A token of selector text, with the 1-based position (in Unicode scalars) where it starts.
struct SelectorToken: Sendable, Equatable {
    /// The kinds of token.
    enum Kind: Sendable, Equatable {
        /// An identifier (a header name or a property name), as written.
        case identifier(String)
        /// A reserved word, always upper-case here whatever its spelling in the selector.
        case keyword(SelectorKeyword)
        /// A string literal, with `''` already turned into `'`.
        case string(String)
        /// An exact numeric literal. The parser checks a decimal magnitude against the `long` range
        /// (it knows whether a minus sign precedes it, as for -9223372036854775808); a hexadecimal
        /// or octal one is the bit pattern of a `long`, as in Java, so 0xFFFFFFFFFFFFFFFFL is -1.
        case integer(magnitude: UInt64, isDecimal: Bool)
        /// An approximate numeric literal.
        case real(Double)
        /// An operator or punctuation: `=`, `<>`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`, `(`, `)`, `,`.
        case symbol(String)
        /// The end of the text.
        case end
    }

    /// What the token is.
    let kind: Kind
    /// The source text of the token.
    let text: String
    /// The 1-based position of the token's first character, counted in Unicode scalars.
    let position: Int

    /// The token as error messages name it: `'='`, `identifier 'price'`, `keyword AND`, …
    var summary: String {
        switch kind {
        case .identifier: "identifier '\(text)'"
        case .keyword(let keyword): "keyword \(keyword.rawValue)"
        case .string: "string \(text)"
        case .integer, .real: "number \(text)"
        case .symbol: "'\(text)'"
        case .end: "the end of the selector"
        }
    }
}

/// The reserved words of the selector language (case-insensitive); none can be an identifier.
enum SelectorKeyword: String, Sendable, CaseIterable {
    case null = "NULL"
    case `true` = "TRUE"
    case `false` = "FALSE"
    case not = "NOT"
    case and = "AND"
    case or = "OR"
    case between = "BETWEEN"
    case like = "LIKE"
    case `in` = "IN"
    case `is` = "IS"
    case escape = "ESCAPE"

    /// The keyword spelled by `word` in any letter case, or `nil`. Only ASCII letters fold, so
    /// that an identifier such as `ın` (dotless i) is not mistaken for `IN`.
    init?(word: String) {
        guard word.utf8.count <= 7, word.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        self.init(rawValue: word.uppercased())
    }
}

/// Splits selector text into tokens (JMS 3.1 §3.8.1.1 lexical rules).
///
/// Literals follow Java: strings in single quotes with `''` for a quote; exact numerics in decimal,
/// hexadecimal (`0x1F`) or octal (`017`) with an optional `L`; approximate numerics such as `1.5`,
/// `.5`, `5.`, `1e3`, `7.0f`, `7d`. Identifiers start with a Java identifier start character and go
/// on with Java identifier part characters.
///
/// The text is read as Unicode scalars, as Java reads it as `char`s (the same for all but
/// supplementary characters), so a combining mark right after a quote does not hide the quote, and
/// positions in error messages count scalars.
struct SelectorLexer {
    private let characters: [Unicode.Scalar]
    private var index = 0

    /// Prepares to tokenize `text`.
    /// - Parameter text: The selector text.
    init(_ text: String) {
        characters = Array(text.unicodeScalars)
    }

    /// Splits the whole text into tokens, ending with an `.end` token.
    /// - Returns: The tokens, in order.
    /// - Throws: A ``SelectorSyntaxError`` for an unterminated string, a malformed number or a
    ///   character that cannot start a token.
    static func tokenize(_ text: String) throws(SelectorSyntaxError) -> [SelectorToken] {
        var lexer = SelectorLexer(text)
        var tokens: [SelectorToken] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    /// Reads the next token.
    /// - Returns: The token; `.end` once the text is used up.
    /// - Throws: A ``SelectorSyntaxError`` when the text there is not a valid token.
    mutating func next() throws(SelectorSyntaxError) -> SelectorToken {
        while let c = peek(), c.properties.isWhitespace { index += 1 }
        let start = index
        guard let c = peek() else {
            return SelectorToken(kind: .end, text: "", position: start + 1)
        }
        if c == "'" { return try string() }
        if c.isASCIIDigit || (c == "." && peek(1)?.isASCIIDigit == true) { return try number() }
        if Self.isIdentifierStart(c) { return identifier() }
        index += 1
        switch c {
        case "=", "+", "-", "*", "/", "(", ")", ",":
            return token(.symbol(String(c)), from: start)
        case "<":
            if peek() == ">" || peek() == "=" { index += 1 }
            return token(.symbol(text(from: start)), from: start)
        case ">":
            if peek() == "=" { index += 1 }
            return token(.symbol(text(from: start)), from: start)
        case "!" where peek() == "=":
            throw SelectorSyntaxError(position: start + 1, "expected an operator, found '!='; write '<>' for not equal")
        default:
            throw SelectorSyntaxError(position: start + 1, "unexpected character '\(c)'")
        }
    }

    // MARK: - Token kinds

    private mutating func string() throws(SelectorSyntaxError) -> SelectorToken {
        let start = index
        index += 1
        var value = ""
        while true {
            guard let c = peek() else {
                throw SelectorSyntaxError(
                    position: start + 1, "unterminated string literal: expected a closing quote (')")
            }
            index += 1
            if c == "'" {
                guard peek() == "'" else { break }
                index += 1
            }
            value.unicodeScalars.append(c)
        }
        return token(.string(value), from: start)
    }

    private mutating func identifier() -> SelectorToken {
        let start = index
        index += 1
        while let c = peek(), Self.isIdentifierPart(c) { index += 1 }
        let word = text(from: start)
        if let keyword = SelectorKeyword(word: word) {
            return token(.keyword(keyword), from: start)
        }
        return token(.identifier(word), from: start)
    }

    private mutating func number() throws(SelectorSyntaxError) -> SelectorToken {
        let start = index
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            index += 2
            return try integer(from: start, digitsFrom: index, radix: 16)
        }
        skipDigits()
        var isReal = false
        if peek() == "." {
            isReal = true
            index += 1
            skipDigits()
        }
        if let e = peek(), e == "e" || e == "E" {
            isReal = true
            index += 1
            if let sign = peek(), sign == "+" || sign == "-" { index += 1 }
            guard peek()?.isASCIIDigit == true else {
                throw SelectorSyntaxError(
                    position: index + 1, "expected the digits of the exponent of '\(text(from: start))'")
            }
            skipDigits()
        }
        if let suffix = peek(), "fFdD".unicodeScalars.contains(suffix) {
            return try real(from: start, mantissaEnd: index, isFloat: suffix == "f" || suffix == "F")
        }
        if isReal {
            return try real(from: start, mantissaEnd: index, isFloat: false)
        }
        let isOctal = characters[start] == "0" && index - start > 1
        return try integer(from: start, digitsFrom: isOctal ? start + 1 : start, radix: isOctal ? 8 : 10)
    }

    /// Finishes an exact numeric literal whose digits start at `digitsFrom` (after `0x`, or after
    /// the leading `0` of an octal literal).
    private mutating func integer(
        from start: Int, digitsFrom: Int, radix: Int
    ) throws(SelectorSyntaxError) -> SelectorToken {
        while let c = peek(), radix == 16 ? c.properties.isASCIIHexDigit : c.isASCIIDigit { index += 1 }
        let digits = text(from: digitsFrom)
        if let suffix = peek(), suffix == "l" || suffix == "L" { index += 1 }
        try checkNothingGlued(to: start)
        let literal = text(from: start)
        guard !digits.isEmpty else {
            throw SelectorSyntaxError(position: start + 1, "expected hexadecimal digits after '\(literal)'")
        }
        guard let magnitude = UInt64(digits, radix: radix) else {
            if digits.allSatisfy({ $0.hexDigitValue.map { $0 < radix } == true }) {
                throw SelectorSyntaxError(position: start + 1, "the number \(literal) is out of range for a long")
            }
            let kind = radix == 8 ? "octal" : radix == 16 ? "hexadecimal" : "decimal"
            throw SelectorSyntaxError(position: start + 1, "'\(literal)' is not a valid \(kind) number")
        }
        return token(.integer(magnitude: magnitude, isDecimal: radix == 10), from: start)
    }

    /// Finishes an approximate numeric literal; the characters up to `mantissaEnd` are the number,
    /// one `f`/`d` suffix may follow.
    private mutating func real(
        from start: Int, mantissaEnd: Int, isFloat: Bool
    ) throws(SelectorSyntaxError) -> SelectorToken {
        let mantissa = text(from: start, to: mantissaEnd)
        if mantissaEnd < characters.count, "fFdD".unicodeScalars.contains(characters[mantissaEnd]) {
            index = mantissaEnd + 1
        }
        try checkNothingGlued(to: start)
        let literal = text(from: start)
        // Java reads a `float` literal as a float and widens it, so 1.1f is 1.100000023841858.
        let value: Double? = isFloat ? Float(mantissa).map(Double.init) : Double(mantissa)
        guard let value else {
            throw SelectorSyntaxError(position: start + 1, "'\(literal)' is not a valid number")
        }
        guard value.isFinite else {
            let type = isFloat ? "float" : "double"
            throw SelectorSyntaxError(position: start + 1, "the number \(literal) is out of range for a \(type)")
        }
        return token(.real(value), from: start)
    }

    /// Rejects a letter or digit right after a number (`12abc`, `09`, `1.5x`).
    private func checkNothingGlued(to start: Int) throws(SelectorSyntaxError) {
        if let c = peek(), Self.isIdentifierPart(c) {
            throw SelectorSyntaxError(
                position: index + 1, "unexpected character '\(c)' after the number '\(text(from: start))'")
        }
    }

    // MARK: - Helpers

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        let i = index + offset
        return i < characters.count ? characters[i] : nil
    }

    private mutating func skipDigits() {
        while peek()?.isASCIIDigit == true { index += 1 }
    }

    private func text(from start: Int, to end: Int? = nil) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: characters[start..<(end ?? index)])
        return text
    }

    private func token(_ kind: SelectorToken.Kind, from start: Int) -> SelectorToken {
        SelectorToken(kind: kind, text: text(from: start), position: start + 1)
    }

    /// Java's `Character.isJavaIdentifierStart`: letters, letter numbers, currency symbols and
    /// connector punctuation such as `_`.
    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .letterNumber, .currencySymbol, .connectorPunctuation:
            true
        default:
            false
        }
    }

    /// Java's `Character.isJavaIdentifierPart`: identifier start characters, digits, combining
    /// marks, and the characters Java ignores in identifiers (format and some control characters).
    static func isIdentifierPart(_ c: Unicode.Scalar) -> Bool {
        if isIdentifierStart(c) { return true }
        switch c.properties.generalCategory {
        case .decimalNumber, .nonspacingMark, .spacingMark, .format:
            return true
        default:
            switch c.value {
            case 0x00...0x08, 0x0E...0x1B, 0x7F...0x9F: return true
            default: return false
            }
        }
    }
}

extension Unicode.Scalar {
    /// Whether this is one of the ASCII digits 0 to 9.
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
