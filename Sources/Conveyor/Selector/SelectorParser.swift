/// A recursive-descent parser from selector tokens to a ``SelectorExpression`` (JMS 3.1 §3.8.1.1).
///
/// Precedence, lowest first: `OR`; `AND`; `NOT`; comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`,
/// `[NOT] BETWEEN`, `[NOT] LIKE`, `[NOT] IN`, `IS [NOT] NULL`), which do not chain; `+` and `-`;
/// `*` and `/`; unary `+` and `-`. Operators of one level associate to the left.
///
/// Besides the grammar, the parser rejects what can never be valid once the types of literals,
/// header fields and operators are known: a selector that is not a condition (`1 + 2`), a
/// comparison of unlike types (`'a' = 1`), an ordering of strings or booleans (`JMSType < 'b'`),
/// arithmetic on a string, and `LIKE` or `IN` on a numeric header. Properties are typed only per
/// message, so those checks fall to evaluation, where such operations are UNKNOWN.
///
/// Nesting (parentheses, `NOT`, signs, and operators within operators) is limited to
/// ``maximumDepth`` levels, so that neither parsing nor evaluation can exhaust the stack whatever the
/// text; chains of `AND` or of `OR` are single nodes and may be as long as needed.
struct SelectorParser {
    /// The deepest nesting a selector may have.
    static let maximumDepth = 128

    /// A parsed sub-expression with what the parser knows about it.
    private struct Operand {
        /// The expression.
        var expression: SelectorExpression
        /// Its type as far as the parser can tell.
        var type: SelectorType
        /// The 1-based position of its first character.
        var position: Int
        /// The height of its expression tree: 1 for a literal or an identifier.
        var depth = 1
    }

    private let tokens: [SelectorToken]
    private var index = 0
    /// How many parentheses, `NOT`s and signs enclose the current token.
    private var nesting = 0

    private init(tokens: [SelectorToken]) {
        self.tokens = tokens
    }

    /// Parses a whole selector.
    /// - Parameter text: The selector text.
    /// - Returns: The expression tree, ready to evaluate.
    /// - Throws: A ``SelectorSyntaxError`` naming the position and what was expected there.
    static func parse(_ text: String) throws(SelectorSyntaxError) -> SelectorExpression {
        var parser = SelectorParser(tokens: try SelectorLexer.tokenize(text))
        return try parser.parseSelector()
    }

    private mutating func parseSelector() throws(SelectorSyntaxError) -> SelectorExpression {
        let root = try parseOr()
        switch current.kind {
        case .end:
            break
        case .symbol(")"):
            throw SelectorSyntaxError(position: current.position, "found ')' with no matching '('")
        default:
            throw SelectorSyntaxError(
                position: current.position,
                "expected an operator, AND, OR or the end of the selector, found \(current.summary)")
        }
        guard root.type.fits(.boolean) else {
            throw SelectorSyntaxError(
                position: root.position,
                "expected a condition (a comparison, TRUE, FALSE or a boolean property), found \(root.type) expression")
        }
        return root.expression
    }

    // MARK: - Logical operators

    private mutating func parseOr() throws(SelectorSyntaxError) -> Operand {
        let first = try parseAnd()
        guard isKeyword(.or) else { return first }
        var operands = [first]
        while isKeyword(.or) {
            advance()
            operands.append(try parseAnd())
        }
        for operand in operands { try requireCondition(operand, for: "OR") }
        return try compound(.or(operands.map(\.expression)), .boolean, at: first.position, operands)
    }

    private mutating func parseAnd() throws(SelectorSyntaxError) -> Operand {
        let first = try parseNot()
        guard isKeyword(.and) else { return first }
        var operands = [first]
        while isKeyword(.and) {
            advance()
            operands.append(try parseNot())
        }
        for operand in operands { try requireCondition(operand, for: "AND") }
        return try compound(.and(operands.map(\.expression)), .boolean, at: first.position, operands)
    }

    private mutating func parseNot() throws(SelectorSyntaxError) -> Operand {
        guard isKeyword(.not) else { return try parsePredicate() }
        let not = advance()
        try enterNesting(at: not)
        defer { nesting -= 1 }
        let operand = try parseNot()
        try requireCondition(operand, for: "NOT")
        return try compound(.not(operand.expression), .boolean, at: not.position, [operand])
    }

    // MARK: - Comparisons

    private mutating func parsePredicate() throws(SelectorSyntaxError) -> Operand {
        let left = try parseAdditive()
        switch current.kind {
        case .symbol(let symbol):
            guard let op = SelectorExpression.ComparisonOperator(rawValue: symbol) else { return left }
            let opToken = advance()
            let right = try parseAdditive()
            try checkComparison(op, left, right, at: opToken)
            return try compound(
                .comparison(op, left.expression, right.expression), .boolean, at: left.position, [left, right])

        case .keyword(.not):
            let next = tokens[min(index + 1, tokens.count - 1)]
            guard case .keyword(let keyword) = next.kind, [.between, .like, .in].contains(keyword) else {
                throw SelectorSyntaxError(
                    position: next.position, "expected BETWEEN, LIKE or IN after NOT, found \(next.summary)")
            }
            advance()
            return try parseKeywordPredicate(keyword, left: left, negated: true)

        case .keyword(let keyword) where [.between, .like, .in, .is].contains(keyword):
            return try parseKeywordPredicate(keyword, left: left, negated: false)

        default:
            return left
        }
    }

    /// Parses the rest of a `BETWEEN`, `LIKE`, `IN` or `IS` predicate, the keyword being current.
    private mutating func parseKeywordPredicate(
        _ keyword: SelectorKeyword, left: Operand, negated: Bool
    ) throws(SelectorSyntaxError) -> Operand {
        switch keyword {
        case .between: return try parseBetween(left, negated: negated)
        case .like: return try compound(parseLike(left, negated: negated), .boolean, at: left.position, [left])
        case .in: return try compound(parseIn(left, negated: negated), .boolean, at: left.position, [left])
        default: return try compound(parseIsNull(left), .boolean, at: left.position, [left])
        }
    }

    private mutating func parseBetween(_ left: Operand, negated: Bool) throws(SelectorSyntaxError) -> Operand {
        advance()
        let low = try parseAdditive()
        guard isKeyword(.and) else {
            throw SelectorSyntaxError(
                position: current.position, "expected AND between the bounds of BETWEEN, found \(current.summary)")
        }
        advance()
        let high = try parseAdditive()
        for operand in [left, low, high] where !operand.type.fits(.number) {
            throw SelectorSyntaxError(
                position: operand.position, "BETWEEN compares numbers only, found \(operand.type)")
        }
        return try compound(
            .between(left.expression, low: low.expression, high: high.expression, negated: negated), .boolean,
            at: left.position, [left, low, high])
    }

    private mutating func parseLike(_ left: Operand, negated: Bool) throws(SelectorSyntaxError) -> SelectorExpression {
        let field = try requireStringIdentifier(left, for: "LIKE")
        advance()
        let patternToken = current
        guard case .string(let pattern) = patternToken.kind else {
            throw SelectorSyntaxError(
                position: patternToken.position, "expected a string pattern after LIKE, found \(patternToken.summary)")
        }
        advance()
        var escape: Unicode.Scalar?
        if isKeyword(.escape) {
            advance()
            guard case .string(let text) = current.kind else {
                throw SelectorSyntaxError(
                    position: current.position,
                    "expected a one-character string after ESCAPE, found \(current.summary)")
            }
            guard text.unicodeScalars.count == 1 else {
                throw SelectorSyntaxError(
                    position: current.position,
                    "the ESCAPE string must be exactly one character, found \(current.text)")
            }
            escape = text.unicodeScalars.first
            advance()
        }
        do {
            return .like(field, try LikePattern(pattern, escape: escape), negated: negated)
        } catch {
            throw SelectorSyntaxError(
                position: patternToken.position,
                "the LIKE pattern \(patternToken.text) ends with its escape character, "
                    + "which must be followed by the character it escapes")
        }
    }

    private mutating func parseIn(_ left: Operand, negated: Bool) throws(SelectorSyntaxError) -> SelectorExpression {
        let field = try requireStringIdentifier(left, for: "IN")
        advance()
        guard isSymbol("(") else {
            throw SelectorSyntaxError(position: current.position, "expected '(' after IN, found \(current.summary)")
        }
        advance()
        var values: Set<String> = []
        while true {
            guard case .string(let value) = current.kind else {
                let reason = values.isEmpty && isSymbol(")")
                    ? "expected a string literal: the IN list cannot be empty"
                    : "expected a string literal in the IN list, found \(current.summary)"
                throw SelectorSyntaxError(position: current.position, reason)
            }
            values.insert(value)
            advance()
            if isSymbol(",") {
                advance()
            } else if isSymbol(")") {
                advance()
                return .in(field, values, negated: negated)
            } else {
                throw SelectorSyntaxError(
                    position: current.position, "expected ',' or ')' in the IN list, found \(current.summary)")
            }
        }
    }

    private mutating func parseIsNull(_ left: Operand) throws(SelectorSyntaxError) -> SelectorExpression {
        guard case .field(let field) = left.expression else {
            throw SelectorSyntaxError(
                position: left.position, "IS NULL applies to an identifier only; expected an identifier before IS")
        }
        advance()
        let negated = isKeyword(.not)
        if negated { advance() }
        guard isKeyword(.null) else {
            throw SelectorSyntaxError(
                position: current.position,
                "expected NULL after '\(negated ? "IS NOT" : "IS")', found \(current.summary)")
        }
        advance()
        return .isNull(field, negated: negated)
    }

    // MARK: - Arithmetic

    private mutating func parseAdditive() throws(SelectorSyntaxError) -> Operand {
        var left = try parseMultiplicative()
        while let op = arithmeticOperator(in: ["+", "-"]) {
            advance()
            let right = try parseMultiplicative()
            left = try arithmetic(op, left, right)
        }
        return left
    }

    private mutating func parseMultiplicative() throws(SelectorSyntaxError) -> Operand {
        var left = try parseUnary()
        while let op = arithmeticOperator(in: ["*", "/"]) {
            advance()
            let right = try parseUnary()
            left = try arithmetic(op, left, right)
        }
        return left
    }

    private mutating func parseUnary() throws(SelectorSyntaxError) -> Operand {
        guard isSymbol("+") || isSymbol("-") else { return try parsePrimary() }
        let sign = advance()
        let negate = sign.text == "-"
        try enterNesting(at: sign)
        defer { nesting -= 1 }
        // A signed literal is folded into the literal, which is also how -9223372036854775808 fits.
        switch current.kind {
        case .integer(let magnitude, let isDecimal):
            let value = try integer(magnitude: magnitude, isDecimal: isDecimal, negate: negate, token: current)
            advance()
            return Operand(expression: .literal(.integer(value)), type: .number, position: sign.position)
        case .real(let value):
            advance()
            return Operand(expression: .literal(.real(negate ? -value : value)), type: .number, position: sign.position)
        default:
            let operand = try parseUnary()
            guard operand.type.fits(.number) else {
                throw SelectorSyntaxError(
                    position: operand.position, "unary '\(sign.text)' needs a number, found \(operand.type)")
            }
            return try compound(.sign(operand.expression, negate: negate), .number, at: sign.position, [operand])
        }
    }

    private mutating func parsePrimary() throws(SelectorSyntaxError) -> Operand {
        let token = current
        let expression: SelectorExpression
        let type: SelectorType
        switch token.kind {
        case .identifier(let name):
            let field = SelectorField(identifier: name)
            expression = .field(field)
            type = field.staticType
        case .string(let value):
            expression = .literal(.string(value))
            type = .string
        case .integer(let magnitude, let isDecimal):
            let value = try integer(magnitude: magnitude, isDecimal: isDecimal, negate: false, token: token)
            expression = .literal(.integer(value))
            type = .number
        case .real(let value):
            expression = .literal(.real(value))
            type = .number
        case .keyword(.true), .keyword(.false):
            expression = .literal(.bool(token.kind == .keyword(.true)))
            type = .boolean
        case .symbol("("):
            advance()
            try enterNesting(at: token)
            defer { nesting -= 1 }
            let inner = try parseOr()
            guard isSymbol(")") else {
                throw SelectorSyntaxError(
                    position: current.position,
                    "expected ')' to close the '(' at position \(token.position)\(found)")
            }
            advance()
            return Operand(expression: inner.expression, type: inner.type, position: token.position, depth: inner.depth)
        default:
            throw expectedValue()
        }
        advance()
        return Operand(expression: expression, type: type, position: token.position)
    }

    // MARK: - Checks

    private func requireCondition(_ operand: Operand, for keyword: String) throws(SelectorSyntaxError) {
        guard operand.type.fits(.boolean) else {
            throw SelectorSyntaxError(
                position: operand.position, "\(keyword) needs conditions as operands, found \(operand.type)")
        }
    }

    private func checkComparison(
        _ op: SelectorExpression.ComparisonOperator, _ left: Operand, _ right: Operand, at token: SelectorToken
    ) throws(SelectorSyntaxError) {
        if op.isOrdering {
            for operand in [left, right] where !operand.type.fits(.number) {
                throw SelectorSyntaxError(
                    position: token.position,
                    "'\(op.rawValue)' compares numbers only, found \(operand.type); "
                        + "strings and booleans support only = and <>")
            }
        }
        guard left.type.fits(right.type) else {
            throw SelectorSyntaxError(
                position: token.position,
                "cannot compare \(left.type) with \(right.type); only values of like type can be compared")
        }
    }

    private mutating func arithmetic(
        _ op: SelectorExpression.ArithmeticOperator, _ left: Operand, _ right: Operand
    ) throws(SelectorSyntaxError) -> Operand {
        for operand in [left, right] where !operand.type.fits(.number) {
            throw SelectorSyntaxError(
                position: operand.position, "'\(op.rawValue)' needs numbers, found \(operand.type)")
        }
        return try compound(
            .arithmetic(op, left.expression, right.expression), .number, at: left.position, [left, right])
    }

    /// An operand for a node over `children`, checking that the tree stays within ``maximumDepth``.
    private func compound(
        _ expression: SelectorExpression, _ type: SelectorType, at position: Int, _ children: [Operand]
    ) throws(SelectorSyntaxError) -> Operand {
        let depth = 1 + children.reduce(0) { max($0, $1.depth) }
        guard depth <= Self.maximumDepth else { throw tooDeep(at: position) }
        return Operand(expression: expression, type: type, position: position, depth: depth)
    }

    /// Counts one more level of parentheses, `NOT` or sign, refusing to go past ``maximumDepth``.
    private mutating func enterNesting(at token: SelectorToken) throws(SelectorSyntaxError) {
        guard nesting < Self.maximumDepth else { throw tooDeep(at: token.position) }
        nesting += 1
    }

    private func tooDeep(at position: Int) -> SelectorSyntaxError {
        SelectorSyntaxError(
            position: position,
            "the selector nests too deeply: at most \(Self.maximumDepth) levels of parentheses and operators "
                + "are allowed")
    }

    private func requireStringIdentifier(
        _ operand: Operand, for keyword: String
    ) throws(SelectorSyntaxError) -> SelectorField {
        guard case .field(let field) = operand.expression else {
            throw SelectorSyntaxError(
                position: operand.position,
                "\(keyword) applies to an identifier only; expected an identifier before \(keyword)")
        }
        guard field.staticType.fits(.string) else {
            throw SelectorSyntaxError(
                position: operand.position, "\(keyword) applies to strings, but this header is \(field.staticType)")
        }
        return field
    }

    /// An exact literal as a `long`, checking the range of decimal literals.
    private func integer(
        magnitude: UInt64, isDecimal: Bool, negate: Bool, token: SelectorToken
    ) throws(SelectorSyntaxError) -> Int64 {
        guard isDecimal else {
            let value = Int64(bitPattern: magnitude)
            return negate ? 0 &- value : value
        }
        if negate, magnitude == Int64.min.magnitude { return Int64.min }
        guard let value = Int64(exactly: magnitude) else {
            throw SelectorSyntaxError(position: token.position, "the number \(token.text) is out of range for a long")
        }
        return negate ? -value : value
    }

    /// The error for a missing operand: `expected a value after '='`, with what was found instead.
    private func expectedValue() -> SelectorSyntaxError {
        var reason: String
        if let previous = index > 0 ? tokens[index - 1] : nil {
            let wantsValue: Bool
            switch previous.kind {
            case .symbol(let s): wantsValue = s != "("
            case .keyword(let k): wantsValue = k == .between
            default: wantsValue = false
            }
            reason = "expected \(wantsValue ? "a value" : "an expression") after '\(previous.text)'"
        } else {
            reason = "expected an expression"
        }
        reason += found
        if case .keyword(let keyword) = current.kind {
            reason += keyword == .null
                ? "; NULL is not a value: use IS NULL or IS NOT NULL to test for it"
                : "; keywords cannot be used as identifiers"
        }
        return SelectorSyntaxError(position: current.position, reason)
    }

    // MARK: - Tokens

    private var current: SelectorToken { tokens[index] }

    /// `, found <current token>`, or nothing at the end of the text.
    private var found: String {
        current.kind == .end ? "" : ", found \(current.summary)"
    }

    /// Moves past the current token (never past the end token) and returns it.
    @discardableResult
    private mutating func advance() -> SelectorToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isKeyword(_ keyword: SelectorKeyword) -> Bool {
        current.kind == .keyword(keyword)
    }

    private func isSymbol(_ symbol: String) -> Bool {
        current.kind == .symbol(symbol)
    }

    private func arithmeticOperator(in symbols: Set<String>) -> SelectorExpression.ArithmeticOperator? {
        guard case .symbol(let symbol) = current.kind, symbols.contains(symbol) else { return nil }
        return SelectorExpression.ArithmeticOperator(rawValue: symbol)
    }
}
