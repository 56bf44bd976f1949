/// A parsed selector expression and its evaluation under SQL three-valued logic (JMS 3.1 §3.8.1.2).
///
/// Built once by ``SelectorParser``; evaluated for each message by a `switch` over the tree, without
/// throwing and without allocating (other than formatting `JMSMessageID` when a selector names it).
/// Evaluation never fails: an operation whose operands are NULL, of unlike types, or not numbers
/// where numbers are needed yields NULL (UNKNOWN as a truth value) instead.
indirect enum SelectorExpression: Sendable {
    /// A literal value.
    case literal(SelectorValue)
    /// A header field or property.
    case field(SelectorField)
    /// `NOT e`.
    case not(SelectorExpression)
    /// `e1 AND e2 AND …`: a chain is one node, so a long chain does not make a deep tree.
    case and([SelectorExpression])
    /// `e1 OR e2 OR …`: a chain is one node, so a long chain does not make a deep tree.
    case or([SelectorExpression])
    /// `l op r` for `=`, `<>`, `<`, `<=`, `>`, `>=`.
    case comparison(ComparisonOperator, SelectorExpression, SelectorExpression)
    /// `l op r` for `+`, `-`, `*`, `/`.
    case arithmetic(ArithmeticOperator, SelectorExpression, SelectorExpression)
    /// Unary `-e` (`negate: true`) or `+e`; NULL unless `e` is a number.
    case sign(SelectorExpression, negate: Bool)
    /// `e [NOT] BETWEEN low AND high`.
    case between(SelectorExpression, low: SelectorExpression, high: SelectorExpression, negated: Bool)
    /// `identifier [NOT] LIKE pattern [ESCAPE c]`.
    case like(SelectorField, LikePattern, negated: Bool)
    /// `identifier [NOT] IN ('a', 'b', …)`.
    case `in`(SelectorField, Set<String>, negated: Bool)
    /// `identifier IS [NOT] NULL`.
    case isNull(SelectorField, negated: Bool)

    /// The comparison operators.
    enum ComparisonOperator: String, Sendable {
        case equal = "="
        case notEqual = "<>"
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="

        /// Whether the operator orders its operands (and so applies to numbers only).
        var isOrdering: Bool { self != .equal && self != .notEqual }

        /// `=` or `<>` applied to operands that are (`same`) or are not equal; `nil` for the
        /// ordering operators, which strings and booleans do not support.
        func equality(_ same: Bool) -> Bool? {
            switch self {
            case .equal: same
            case .notEqual: !same
            case .less, .lessOrEqual, .greater, .greaterOrEqual: nil
            }
        }

        /// Applies the operator to two values of one comparable type.
        func apply<T: Comparable>(_ l: T, _ r: T) -> Bool {
            switch self {
            case .equal: l == r
            case .notEqual: l != r
            case .less: l < r
            case .lessOrEqual: l <= r
            case .greater: l > r
            case .greaterOrEqual: l >= r
            }
        }
    }

    /// The arithmetic operators.
    enum ArithmeticOperator: String, Sendable {
        case add = "+"
        case subtract = "-"
        case multiply = "*"
        case divide = "/"

        /// Exact arithmetic; `nil` on overflow or division by zero.
        func apply(_ l: Int64, _ r: Int64) -> Int64? {
            let (result, overflow): (Int64, Bool)
            switch self {
            case .add: (result, overflow) = l.addingReportingOverflow(r)
            case .subtract: (result, overflow) = l.subtractingReportingOverflow(r)
            case .multiply: (result, overflow) = l.multipliedReportingOverflow(by: r)
            case .divide:
                guard r != 0 else { return nil }
                (result, overflow) = l.dividedReportingOverflow(by: r)
            }
            return overflow ? nil : result
        }

        /// Approximate arithmetic, IEEE 754 (`x / 0.0` is ±infinity or NaN).
        func apply(_ l: Double, _ r: Double) -> Double {
            switch self {
            case .add: l + r
            case .subtract: l - r
            case .multiply: l * r
            case .divide: l / r
            }
        }
    }

    /// Whether the expression refers to `field` anywhere.
    /// - Parameter field: A header field or property.
    /// - Returns: `true` when some identifier of the expression is `field`.
    func names(_ field: SelectorField) -> Bool {
        switch self {
        case .literal: false
        case .field(let f): f == field
        case .not(let e), .sign(let e, _): e.names(field)
        case .and(let es), .or(let es): es.contains { $0.names(field) }
        case .comparison(_, let l, let r), .arithmetic(_, let l, let r): l.names(field) || r.names(field)
        case .between(let e, let low, let high, _): e.names(field) || low.names(field) || high.names(field)
        case .like(let f, _, _), .in(let f, _, _), .isNull(let f, _): f == field
        }
    }

    // MARK: - Evaluation

    /// The expression's truth value for `message`.
    /// - Parameter message: The message being evaluated.
    /// - Returns: `true`, `false`, or `nil` for UNKNOWN (a NULL operand, unlike types, or a
    ///   non-boolean value where a condition is needed).
    func truth(in message: Message) -> Bool? {
        switch self {
        case .not(let operand):
            return operand.truth(in: message).map { !$0 }

        case .and(let operands):
            // FALSE if any operand is FALSE, else UNKNOWN if any is UNKNOWN, else TRUE.
            var unknown = false
            for operand in operands {
                switch operand.truth(in: message) {
                case false?: return false
                case nil: unknown = true
                case true?: break
                }
            }
            return unknown ? nil : true

        case .or(let operands):
            // TRUE if any operand is TRUE, else UNKNOWN if any is UNKNOWN, else FALSE.
            var unknown = false
            for operand in operands {
                switch operand.truth(in: message) {
                case true?: return true
                case nil: unknown = true
                case false?: break
                }
            }
            return unknown ? nil : false

        case .comparison(let op, let l, let r):
            return Self.compare(op, l.value(in: message), r.value(in: message))

        case .between(let operand, let low, let high, let negated):
            let value = operand.value(in: message)
            let lowValue = low.value(in: message)
            let highValue = high.value(in: message)
            if negated {
                // e < low OR e > high
                let below = Self.compare(.less, value, lowValue)
                if below == true { return true }
                let above = Self.compare(.greater, value, highValue)
                if above == true { return true }
                return below == false && above == false ? false : nil
            }
            // e >= low AND e <= high
            let fromLow = Self.compare(.greaterOrEqual, value, lowValue)
            if fromLow == false { return false }
            let toHigh = Self.compare(.lessOrEqual, value, highValue)
            if toHigh == false { return false }
            return fromLow == true && toHigh == true ? true : nil

        case .like(let field, let pattern, let negated):
            guard case .string(let text) = field.value(in: message) else { return nil }
            return pattern.matches(text) != negated

        case .in(let field, let values, let negated):
            guard case .string(let text) = field.value(in: message) else { return nil }
            return values.contains(text) != negated

        case .isNull(let field, let negated):
            return field.isNull(in: message) != negated

        case .literal, .field, .arithmetic, .sign:
            return value(in: message).truth
        }
    }

    /// The expression's value for `message`.
    /// - Parameter message: The message being evaluated.
    /// - Returns: The value; `.null` for NULL, and a boolean for conditions, with UNKNOWN as `.null`.
    func value(in message: Message) -> SelectorValue {
        switch self {
        case .literal(let value):
            return value

        case .field(let field):
            return field.value(in: message)

        case .arithmetic(let op, let l, let r):
            switch (l.value(in: message), r.value(in: message)) {
            case (.integer(let a), .integer(let b)):
                return op.apply(a, b).map(SelectorValue.integer) ?? .null
            case (.integer(let a), .real(let b)):
                return .real(op.apply(Double(a), b))
            case (.real(let a), .integer(let b)):
                return .real(op.apply(a, Double(b)))
            case (.real(let a), .real(let b)):
                return .real(op.apply(a, b))
            default:
                return .null
            }

        case .sign(let operand, let negate):
            switch operand.value(in: message) {
            case .integer(let v):
                guard negate else { return .integer(v) }
                let (result, overflow) = Int64(0).subtractingReportingOverflow(v)
                return overflow ? .null : .integer(result)
            case .real(let v):
                return .real(negate ? -v : v)
            default:
                return .null
            }

        case .not, .and, .or, .comparison, .between, .like, .in, .isNull:
            return truth(in: message).map(SelectorValue.bool) ?? .null
        }
    }

    /// Compares two values under the JMS rules.
    ///
    /// Numbers compare with numbers (an exact number is widened to `Double` when the other side is
    /// approximate, as Java's numeric promotion does); strings and booleans compare with their own
    /// type, for `=` and `<>` only.
    /// A comparison of unlike types (a string with a number, say) is FALSE, as JMS 3.1 §3.8.1.2
    /// says, never a run-time error: so `NOT (s = 1)` for a string `s` matches.
    /// - Returns: The result; `nil` (UNKNOWN) when either side is NULL, or when an ordering operator
    ///   meets strings or booleans (which only support `=` and `<>`).
    static func compare(_ op: ComparisonOperator, _ l: SelectorValue, _ r: SelectorValue) -> Bool? {
        switch (l, r) {
        case (.integer(let a), .integer(let b)): op.apply(a, b)
        case (.integer(let a), .real(let b)): op.apply(Double(a), b)
        case (.real(let a), .integer(let b)): op.apply(a, Double(b))
        case (.real(let a), .real(let b)): op.apply(a, b)
        case (.string(let a), .string(let b)): op.equality(a == b)
        case (.bool(let a), .bool(let b)): op.equality(a == b)
        case (.null, _), (_, .null): nil
        default: false
        }
    }
}
