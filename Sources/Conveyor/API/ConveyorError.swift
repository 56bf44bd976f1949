/// The one error type Conveyor throws.
///
/// Every error carries a ``Code`` that names the JMS exception kind it corresponds to, a message a
/// person can act on, and optionally the underlying error that caused it. Codes are an open set of
/// static values (not an enum), so new kinds can be added without breaking clients that switch on them.
public struct ConveyorError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure, one per JMS exception class.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }

        /// An operation was attempted on an object in the wrong state: closed, not started,
        /// an active durable subscription being removed, a transaction call in a non-transacted session.
        public static let illegalState = Code("illegal state")
        /// A message selector is not valid JMS selector syntax (`InvalidSelectorException`).
        public static let invalidSelector = Code("invalid selector")
        /// A destination name is invalid, unknown, or may not be used here (`InvalidDestinationException`).
        public static let invalidDestination = Code("invalid destination")
        /// A message property, header or body value has the wrong type or cannot be converted
        /// (`MessageFormatException`).
        public static let messageFormat = Code("message format")
        /// A commit failed and the transaction was rolled back (`TransactionRolledBackException`).
        public static let transactionRolledBack = Code("transaction rolled back")
        /// A limit was reached: a full destination, memory, or map size (`ResourceAllocationException`).
        public static let resourceAllocation = Code("resource allocation")
        /// A client identifier is invalid or already in use (`InvalidClientIDException`).
        public static let invalidClientID = Code("invalid client ID")
        /// The storage engine failed: I/O error, corrupt or locked files, full disk.
        public static let storage = Code("storage")
        /// The object does not support the call in its current configuration, such as naming a
        /// destination per send on a producer created with one (`UnsupportedOperationException`).
        public static let unsupportedOperation = Code("unsupported operation")
        /// A wait for a resource ran out of time (for example a blocked send under flow control).
        public static let timeout = Code("timeout")

        /// The code's name, as shown in error messages.
        public var description: String { raw }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation that says what was wrong and, where possible, what to do.
    public var message: String
    /// The error that caused this one, if any (an I/O error from a store, for example).
    public var underlying: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: A human-readable explanation.
    ///   - underlying: The error that caused this one, if any.
    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// `"<code>: <message>"`, followed by the underlying error when there is one.
    public var description: String {
        if let underlying {
            return "\(code): \(message) (caused by: \(underlying))"
        }
        return "\(code): \(message)"
    }
}

extension ConveyorError {
    static func illegalState(_ message: String) -> ConveyorError { ConveyorError(.illegalState, message) }
    static func closed(_ what: String) -> ConveyorError {
        ConveyorError(.illegalState, "the \(what) is closed; create a new one to continue")
    }
    static func messageFormat(_ message: String) -> ConveyorError { ConveyorError(.messageFormat, message) }
    static func invalidDestination(_ message: String) -> ConveyorError { ConveyorError(.invalidDestination, message) }
}
