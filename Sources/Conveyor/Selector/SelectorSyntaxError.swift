/// A syntax or type error found while parsing a selector: where it is and what was expected there.
///
/// Internal to parsing; ``Selector/init(_:)`` turns it into a ``ConveyorError`` of code
/// ``ConveyorError/Code/invalidSelector`` whose message quotes the selector.
struct SelectorSyntaxError: Error, Sendable, Equatable {
    /// The 1-based character position of the offending text (one past the end for a selector that
    /// stops too early).
    let position: Int
    /// What is wrong, phrased as what was expected.
    let reason: String

    /// Creates an error.
    /// - Parameters:
    ///   - position: The 1-based character position.
    ///   - reason: What is wrong.
    init(position: Int, _ reason: String) {
        self.position = position
        self.reason = reason
    }

    /// The error as thrown by the public API: `invalid selector '<text>' at position N: <reason>`.
    /// - Parameter expression: The selector text.
    /// - Returns: An ``ConveyorError/Code/invalidSelector`` error.
    func conveyorError(in expression: String) -> ConveyorError {
        ConveyorError(.invalidSelector, "invalid selector '\(expression)' at position \(position): \(reason)")
    }
}
