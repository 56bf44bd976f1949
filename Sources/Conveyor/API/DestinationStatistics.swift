/// Counters for one queue or subscription, read with ``Broker/statistics()``.
public struct DestinationStatistics: Sendable, Hashable {
    /// `queue://name`, or `topic://name` followed by the subscription (`topic://prices#billing:audit`).
    public var name: String
    /// Messages waiting to be delivered.
    public var depth: Int
    /// The body bytes of the waiting messages.
    public var depthBytes: Int
    /// Messages delivered to an application and not yet acknowledged.
    public var inFlight: Int
    /// Messages ever added (sends, and for a subscription, publications it matched).
    public var enqueued: Int
    /// Messages acknowledged, so removed for good.
    public var dequeued: Int
    /// Consumers currently open on it.
    public var consumers: Int
}
