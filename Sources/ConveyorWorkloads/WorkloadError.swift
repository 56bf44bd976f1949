/// Why a workload could not run or did not complete.
public struct WorkloadError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure: an open set of static values, so new kinds can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }

        /// The workload has an identifier but no implementation yet.
        public static let notImplemented = Code("not implemented")
        /// The run did not finish within its time limit.
        public static let timedOut = Code("timed out")
        /// A consumer stopped receiving before every message arrived.
        public static let incomplete = Code("incomplete")
        /// A message arrived that the workload did not expect (wrong body or correlation ID).
        public static let unexpectedMessage = Code("unexpected message")
        /// A parameter is out of range (no runs, no messages).
        public static let invalidParameter = Code("invalid parameter")

        /// The code's name, as shown in error messages.
        public var description: String { raw }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong, in words a person can act on.
    public var message: String
    /// The error that caused this one, if any.
    public var underlying: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong.
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
