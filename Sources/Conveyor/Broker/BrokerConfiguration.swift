import Logging

/// How a ``Broker`` behaves. Every setting has a documented default.
public struct BrokerConfiguration: Sendable {
    /// How many messages a consumer takes from its queue at once, at most (default 100).
    ///
    /// Larger batches amortise locking; a consumer never takes more than a fair share of the waiting
    /// messages when others consume the same queue, and a closing consumer hands back what it had not
    /// delivered yet.
    public var prefetch: Int = 100

    /// The policy of every destination that has no entry in ``policies``.
    public var defaultPolicy = DestinationPolicy()

    /// Policies by destination name (a queue's name, or a topic's name for all its subscriptions).
    public var policies: [String: DestinationPolicy] = [:]

    /// How many recent duplicate-detection IDs (``Message/duplicateIDProperty``) each destination
    /// remembers (default 10,000); 0 turns duplicate detection off.
    public var duplicateDetectionWindow: Int = 10_000

    /// How much of each durable queue's backlog stays in memory when the store pages (LMDB, file);
    /// the rest is read back from the store as consumers drain it. See ``MemoryWindow``.
    public var memoryWindow = MemoryWindow()

    /// Where the broker logs (debug and trace on hot paths only). Defaults to a logger labelled
    /// `conveyor` that follows the process's logging bootstrap.
    public var logger: Logger = Logger(label: "conveyor")

    /// The default configuration.
    public init() {}

    /// The policy that applies to a destination name.
    /// - Parameter name: A queue or topic name.
    /// - Returns: Its entry in ``policies``, else ``defaultPolicy``.
    public func policy(for name: String) -> DestinationPolicy {
        policies[name] ?? defaultPolicy
    }
}
