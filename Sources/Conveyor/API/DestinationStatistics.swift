/// Counters for one queue or subscription, read with ``Broker/statistics()``.
///
/// Whose counters they are depends on the store:
/// - With a store shared by several processes (an `LMDBStore` opened with `sharing: .processes`,
///   see ``SharedMessageStore``), every process's: ``enqueued``, ``dequeued``, ``expired``,
///   ``deadLettered`` and ``dropped`` count since the store was created, over every process that
///   used it (a process's counts are kept in the store when it closes it, or when it dies; a process
///   killed loses at most its last quarter of a second of counting), and ``consumers`` and
///   ``inFlight`` are those of the processes open now. Another process's activity shows within about
///   0.25 s. Subscriptions deleted lose their counters; one created again starts from zero.
/// - Otherwise (a single-process LMDB store, the file store, the memory store), this broker's own
///   counters since it opened, like ActiveMQ's JMX counters; only ``depth`` comes from the store.
public struct DestinationStatistics: Sendable, Hashable {
    /// `queue://name`, or `topic://name` followed by the subscription (`topic://prices#billing:audit`).
    public var name: String
    /// Messages waiting to be delivered, including those waiting out a delivery or redelivery delay.
    public var depth: Int
    /// The body bytes of the waiting messages.
    public var depthBytes: Int
    /// Messages handed to consumers and not yet acknowledged: delivered to the application, or taken
    /// into a consumer's prefetch buffer (as ActiveMQ counts "in flight"). They count against backlog
    /// limits, and go back to ``depth`` if the consumer closes or the session rolls back.
    public var inFlight: Int
    /// Messages ever added (sends, and for a subscription, publications it matched).
    public var enqueued: Int
    /// Messages acknowledged, so removed for good.
    public var dequeued: Int
    /// Messages whose time-to-live ran out before delivery.
    public var expired: Int
    /// Messages moved to the dead letter queue after too many deliveries.
    public var deadLettered: Int
    /// Messages dropped to make room under the drop-oldest overflow policy.
    public var dropped: Int
    /// Consumers currently open on it.
    public var consumers: Int
}
