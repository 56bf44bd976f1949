/// How a queue (or every subscription of a topic) treats redelivery, dead letters, expiry and backlog.
///
/// Set the broker-wide default in ``BrokerConfiguration/defaultPolicy`` and override it per
/// destination name in ``BrokerConfiguration/policies``.
public struct DestinationPolicy: Sendable, Hashable {
    /// When and how often a message that was not acknowledged is delivered again.
    public var redelivery = RedeliveryPolicy()
    /// Where messages go after too many deliveries; `nil` (the default) means `DLQ.<destination name>`.
    public var deadLetterQueue: Queue?
    /// Where expired messages go; `nil` (the default) means they are removed (and counted).
    public var expiryQueue: Queue?
    /// Backlog limits and what happens when they are reached; none by default.
    public var limits = DestinationLimits()

    /// The default policy: six redeliveries without delay, then `DLQ.<name>`; expired messages
    /// removed; no backlog limit.
    public init() {}
}

/// When a message is delivered again after a rollback, a recover or a listener that threw
/// (ActiveMQ's `RedeliveryPolicy`).
public struct RedeliveryPolicy: Sendable, Hashable {
    /// How many times a message is redelivered before it is dead-lettered (default 6: seven
    /// deliveries in all). `-1` redelivers for ever; `0` dead-letters after the first failed delivery.
    public var maximumRedeliveries: Int = 6
    /// The wait before the first redelivery (default zero: at once, as JMS expects).
    public var initialDelay: Duration = .zero
    /// Each further redelivery waits this many times longer than the previous one (default 1).
    public var backoffMultiplier: Double = 1
    /// The longest wait between redeliveries; `nil` for no cap.
    public var maximumDelay: Duration?

    /// The default policy.
    public init() {}

    /// Creates a policy.
    /// - Parameters:
    ///   - maximumRedeliveries: Redeliveries before dead-lettering; `-1` for no limit.
    ///   - initialDelay: Wait before the first redelivery.
    ///   - backoffMultiplier: Growth factor of the wait.
    ///   - maximumDelay: Cap on the wait.
    public init(maximumRedeliveries: Int, initialDelay: Duration = .zero, backoffMultiplier: Double = 1, maximumDelay: Duration? = nil) {
        self.maximumRedeliveries = maximumRedeliveries
        self.initialDelay = initialDelay
        self.backoffMultiplier = backoffMultiplier
        self.maximumDelay = maximumDelay
    }

    /// The wait before redelivery number `redelivery` (1 for the first).
    /// - Parameter redelivery: Which redelivery, from 1.
    /// - Returns: The delay, capped by ``maximumDelay``.
    public func delay(beforeRedelivery redelivery: Int) -> Duration {
        guard initialDelay > .zero, redelivery >= 1 else { return .zero }
        let factor = backoffMultiplier > 1 ? pow(backoffMultiplier, Double(redelivery - 1)) : 1
        let milliseconds = min(Double(initialDelay.milliseconds) * factor, Double(Int64.max / 2))
        let delay = Duration.milliseconds(Int64(milliseconds))
        if let maximumDelay, delay > maximumDelay { return maximumDelay }
        return delay
    }

    /// Whether a message already delivered `deliveries` times may be delivered once more.
    func allowsDelivery(after deliveries: Int) -> Bool {
        maximumRedeliveries < 0 || deliveries <= maximumRedeliveries
    }
}

/// Backlog limits for one destination (the seeds' 消息堆积 threshold).
///
/// A queue counts the messages it holds: waiting, scheduled and delivered but unacknowledged.
/// A topic applies the limits to each of its subscriptions.
public struct DestinationLimits: Sendable, Hashable {
    /// The most messages the destination holds; `nil` for no limit.
    public var maximumMessages: Int?
    /// The most body bytes the destination holds; `nil` for no limit.
    public var maximumBytes: Int?
    /// What a send does when a limit is reached.
    public var overflow: OverflowPolicy = .block(timeout: .seconds(30))

    /// No limits.
    public init() {}

    /// Creates limits.
    /// - Parameters:
    ///   - maximumMessages: Message count limit, or `nil`.
    ///   - maximumBytes: Body byte limit, or `nil`.
    ///   - overflow: What happens when a limit is reached.
    public init(maximumMessages: Int? = nil, maximumBytes: Int? = nil, overflow: OverflowPolicy) {
        self.maximumMessages = maximumMessages
        self.maximumBytes = maximumBytes
        self.overflow = overflow
    }

    var isLimited: Bool { maximumMessages != nil || maximumBytes != nil }
}

/// What a send does when its destination is full.
public enum OverflowPolicy: Sendable, Hashable {
    /// Flow control: the send waits for room, up to `timeout`, then fails with
    /// ``ConveyorError/Code/resourceAllocation``.
    case block(timeout: Duration)
    /// The send fails at once with ``ConveyorError/Code/resourceAllocation``.
    case reject
    /// The oldest waiting message of the lowest priority is removed to make room, and counted as
    /// dropped in the statistics.
    case dropOldest
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
