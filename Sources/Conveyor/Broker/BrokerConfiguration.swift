import Logging

/// How a ``Broker`` behaves. Every setting has a documented default.
public struct BrokerConfiguration: Sendable {
    /// How many messages a consumer takes from its queue at once, at most (default 100).
    ///
    /// Larger batches amortise locking; a consumer never takes more than a fair share of the waiting
    /// messages when others consume the same queue, and a closing consumer hands back what it had not
    /// delivered yet.
    public var prefetch: Int = 100

    /// Where the broker logs (debug and trace on hot paths only). Defaults to a logger labelled
    /// `conveyor` that follows the process's logging bootstrap.
    public var logger: Logger = Logger(label: "conveyor")

    /// The default configuration.
    public init() {}
}
