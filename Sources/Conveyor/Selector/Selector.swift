/// A JMS message selector: a condition on a message's headers and properties that decides which
/// messages a consumer receives (JMS 3.1 §3.8.1).
///
/// The text is parsed once, when the selector is created; ``matches(_:)`` then evaluates the
/// compiled expression for each message, without throwing and without allocating (apart from
/// formatting `JMSMessageID` when the selector names it). The syntax is the SQL92 conditional
/// subset JMS defines:
///
/// - identifiers name properties (case-sensitive, `NULL` when not set) or one of the headers
///   `JMSDeliveryMode` (`'PERSISTENT'` or `'NON_PERSISTENT'`), `JMSPriority`, `JMSMessageID`,
///   `JMSTimestamp`, `JMSCorrelationID` and `JMSType`; the other headers (`JMSDestination`,
///   `JMSReplyTo`, `JMSExpiration`, `JMSRedelivered`, `JMSDeliveryTime`) may not be named by a
///   selector in JMS and here read as unset properties, so they are always NULL;
/// - `JMSXDeliveryCount` is the count of the delivery being decided: a consumer, browser or
///   subscription sees `1` for a message never delivered before, `2` for its first redelivery, and so
///   on, the value the delivered message will carry;
/// - literals: `'strings'` (`''` is a quote), exact numbers (`42`, `42L`, `0x2A`, `052`),
///   approximate numbers (`1.5`, `.5`, `1e3`, `7.0f`), `TRUE` and `FALSE`;
/// - operators, lowest precedence first: `OR`; `AND`; `NOT`; `=` `<>` `<` `<=` `>` `>=`,
///   `[NOT] BETWEEN … AND …`, `[NOT] LIKE 'pattern' [ESCAPE 'c']`, `[NOT] IN ('a', …)`,
///   `IS [NOT] NULL`; `+` `-`; `*` `/`; unary `+` `-`. Keywords are case-insensitive.
///
/// Evaluation uses SQL three-valued logic: a comparison with NULL is UNKNOWN, and a message matches
/// only when the selector is TRUE. A comparison of unlike types (a string with a number), an
/// ordering of strings or booleans, and arithmetic on a non-number are UNKNOWN too. Exact
/// arithmetic stays exact; integer division by zero or overflow is UNKNOWN, while approximate
/// arithmetic follows IEEE 754 (`1 / 0.0` is infinity). `LIKE` compares Unicode scalars exactly,
/// while `=` and `IN` use Swift string equality (canonically equivalent strings are equal).
///
/// Mistakes that types reveal before any message is seen are parse errors: a selector that is not
/// a condition (`1 + 2`), a comparison of unlike literal or header types (`'a' = 1`), an ordering
/// of strings or booleans (`JMSType < 'b'`), arithmetic on a string literal. Nesting is limited to
/// 128 levels; `AND` and `OR` chains may be of any length.
///
/// Two selectors are equal when their texts are.
public struct Selector: Sendable, Hashable, CustomStringConvertible {
    /// The selector text, as given.
    public let expression: String
    /// The compiled expression.
    private let root: SelectorExpression
    /// Whether the expression names `JMSXDeliveryCount`, so that the broker knows to evaluate it
    /// with the count of the coming delivery (see ``matchesDelivery(of:)``).
    private let namesDeliveryCount: Bool

    /// Parses a selector; evaluate the result as often as needed.
    /// - Parameter expression: The selector text, for example `"JMSPriority > 5 AND region = 'EU'"`.
    /// - Throws: ``ConveyorError/Code/invalidSelector`` when the text is not a valid selector; the
    ///   message names the 1-based character position and what was expected there, as in
    ///   `invalid selector 'a = ' at position 5: expected a value after '='`.
    public init(_ expression: String) throws(ConveyorError) {
        do {
            self.root = try SelectorParser.parse(expression)
        } catch {
            throw error.conveyorError(in: expression)
        }
        self.expression = expression
        self.namesDeliveryCount = root.names(.property(Message.jmsxDeliveryCount))
    }

    /// Parses an optional selector, treating no text, empty text and whitespace as no selector.
    /// - Parameter expression: The selector text, or `nil`.
    /// - Returns: `nil` when `expression` is `nil`, empty or only whitespace (JMS: an empty selector
    ///   is the same as none); otherwise the parsed selector.
    /// - Throws: ``ConveyorError/Code/invalidSelector`` when the text is not a valid selector.
    public static func parse(_ expression: String?) throws(ConveyorError) -> Selector? {
        guard let expression, !expression.unicodeScalars.allSatisfy(\.properties.isWhitespace) else { return nil }
        return try Selector(expression)
    }

    /// Whether the selector is TRUE for a message.
    /// - Parameter message: The message to test.
    /// - Returns: `true` only when the selector evaluates to TRUE; FALSE and UNKNOWN do not match.
    public func matches(_ message: Message) -> Bool {
        root.truth(in: message) == true
    }

    /// Whether the selector is TRUE for the next delivery of a waiting message: the broker's view,
    /// used when it picks messages for a consumer, a browser or a subscription.
    ///
    /// A waiting message records how often it was delivered so far (``Message/deliveryCount`` is 0
    /// for a new one), while the delivered copy counts the delivery it is part of; so here
    /// `JMSXDeliveryCount` is one more than the recorded count, and `JMSXDeliveryCount = 1` selects
    /// exactly the first deliveries. Selectors that do not name it are evaluated as ``matches(_:)``.
    /// - Parameter message: A message as it waits in a queue or is published to a topic.
    /// - Returns: `true` only when the selector evaluates to TRUE for that delivery.
    func matchesDelivery(of message: Message) -> Bool {
        guard namesDeliveryCount else { return matches(message) }
        var delivery = message
        delivery.deliveryCount += 1
        return matches(delivery)
    }

    /// Evaluates the selector for a message under three-valued logic.
    /// - Parameter message: The message to test.
    /// - Returns: `true` (TRUE), `false` (FALSE) or `nil` (UNKNOWN: the outcome depends on a NULL
    ///   or on values of unlike types).
    public func evaluate(_ message: Message) -> Bool? {
        root.truth(in: message)
    }

    /// The selector text.
    public var description: String { expression }

    /// Whether two selectors have the same text.
    /// - Parameters:
    ///   - lhs: A selector.
    ///   - rhs: Another selector.
    /// - Returns: `true` when the texts are equal.
    public static func == (lhs: Selector, rhs: Selector) -> Bool {
        lhs.expression == rhs.expression
    }

    /// Hashes the selector text.
    /// - Parameter hasher: The hasher to feed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(expression)
    }
}
