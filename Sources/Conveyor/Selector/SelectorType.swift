/// The type of a selector expression as far as the parser can tell, used to reject selectors that
/// can never be valid (`1 + 2` as a whole selector, `'a' < 'b'`, `JMSPriority LIKE 'x'`).
enum SelectorType: Sendable, Equatable, CustomStringConvertible {
    /// A boolean expression: a comparison, a logical operator, or TRUE/FALSE.
    case boolean
    /// An exact or approximate number.
    case number
    /// A string.
    case string
    /// Only known per message: an application property.
    case unknown

    /// Whether a value of this type may stand where a `required` value is expected.
    /// - Parameter required: The type the context needs.
    /// - Returns: `true` when the types agree or either is only known at run time.
    func fits(_ required: SelectorType) -> Bool {
        self == .unknown || required == .unknown || self == required
    }

    /// `a boolean`, `a number`, `a string` or `a property`, for error messages.
    var description: String {
        switch self {
        case .boolean: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .unknown: "a property"
        }
    }
}
