/// A durable subscription as a broker knows it, read with ``Broker/durableSubscriptions()``.
public struct DurableSubscriptionInfo: Sendable, Hashable {
    /// The subscription's identity: client identifier (if any) and name.
    public var key: SubscriptionKey
    /// The topic it subscribes to.
    public var topic: Topic
    /// Its selector, if any.
    public var selector: String?
    /// Whether messages published by its own client are skipped.
    public var noLocal: Bool
    /// Whether several consumers may share it (JMS 2.0 shared durable subscription).
    public var isShared: Bool
    /// Its counters: messages waiting, in flight, consumers open on it.
    public var statistics: DestinationStatistics
}
