/// A value as a selector sees it while evaluating: NULL, a boolean, an exact or approximate number,
/// or a string.
///
/// Produced afresh for every operand of every evaluation, so it holds no storage of its own: a
/// string payload is the message's own string, retained, never copied.
enum SelectorValue: Sendable, Equatable {
    /// SQL NULL: a missing property or header, or the result of an operation that has no value
    /// (arithmetic on a non-number, integer division by zero, integer overflow).
    case null
    /// A boolean.
    case bool(Bool)
    /// An exact numeric (JMS `byte`, `short`, `int`, `long`).
    case integer(Int64)
    /// An approximate numeric (JMS `float`, `double`).
    case real(Double)
    /// A string.
    case string(String)

    /// The selector view of a property value: `nil` (not set) is NULL; a byte array, which a
    /// property cannot hold anyway, is NULL too.
    init(_ value: MessageValue?) {
        guard let value else {
            self = .null
            return
        }
        switch value {
        case .bool(let v): self = .bool(v)
        case .string(let v): self = .string(v)
        case .bytes: self = .null
        default:
            switch value.numeric {
            case .integer(let v): self = .integer(v)
            case .real(let v): self = .real(v)
            case nil: self = .null
            }
        }
    }

    /// The value as a truth value: a boolean is itself; anything else, NULL included, is UNKNOWN.
    var truth: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }
}
