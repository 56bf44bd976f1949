/// The counters of one queue or subscription that the processes sharing a store exchange (see
/// ``SharedMessageStore/shareStatistics(_:)``).
///
/// Two kinds live side by side: *cumulative* counters (``enqueued``, ``dequeued``, ``expired``,
/// ``deadLettered``, ``dropped``), which only grow and which the store keeps when a process ends,
/// and *live* ones (``consumers``, ``inFlight``, ``inFlightBytes``), which describe a process now
/// and end with it.
public struct DestinationCounters: Sendable, Hashable {
    /// As ``DestinationStatistics/enqueued`` (cumulative).
    public var enqueued: Int
    /// As ``DestinationStatistics/dequeued`` (cumulative).
    public var dequeued: Int
    /// As ``DestinationStatistics/expired`` (cumulative).
    public var expired: Int
    /// As ``DestinationStatistics/deadLettered`` (cumulative).
    public var deadLettered: Int
    /// As ``DestinationStatistics/dropped`` (cumulative).
    public var dropped: Int
    /// As ``DestinationStatistics/consumers`` (live).
    public var consumers: Int
    /// As ``DestinationStatistics/inFlight`` (live).
    public var inFlight: Int
    /// The body bytes of the in-flight messages (live).
    public var inFlightBytes: Int

    /// Creates counters; every one not given is zero.
    /// - Parameters:
    ///   - enqueued: Messages added.
    ///   - dequeued: Messages acknowledged.
    ///   - expired: Messages expired before delivery.
    ///   - deadLettered: Messages moved to the dead letter queue.
    ///   - dropped: Messages dropped by the drop-oldest policy.
    ///   - consumers: Consumers open now.
    ///   - inFlight: Messages in flight now.
    ///   - inFlightBytes: Body bytes of the messages in flight now.
    public init(enqueued: Int = 0, dequeued: Int = 0, expired: Int = 0, deadLettered: Int = 0, dropped: Int = 0,
                consumers: Int = 0, inFlight: Int = 0, inFlightBytes: Int = 0) {
        self.enqueued = enqueued
        self.dequeued = dequeued
        self.expired = expired
        self.deadLettered = deadLettered
        self.dropped = dropped
        self.consumers = consumers
        self.inFlight = inFlight
        self.inFlightBytes = inFlightBytes
    }

    /// Every counter zero.
    public static let zero = DestinationCounters()

    /// Whether every counter is zero (nothing worth publishing or keeping).
    public var isZero: Bool { self == .zero }

    /// The cumulative counters only; the live ones zero (what a store keeps when a process ends).
    public var cumulative: DestinationCounters {
        DestinationCounters(enqueued: enqueued, dequeued: dequeued, expired: expired, deadLettered: deadLettered, dropped: dropped)
    }

    /// Adds every counter of `other` to this one.
    /// - Parameter other: The counters to add.
    public mutating func add(_ other: DestinationCounters) {
        enqueued += other.enqueued
        dequeued += other.dequeued
        expired += other.expired
        deadLettered += other.deadLettered
        dropped += other.dropped
        consumers += other.consumers
        inFlight += other.inFlight
        inFlightBytes += other.inFlightBytes
    }
}
