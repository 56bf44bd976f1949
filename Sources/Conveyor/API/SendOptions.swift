/// How a producer sends: delivery mode, priority, time-to-live and delivery delay.
///
/// A producer has default options (``MessageProducer/options``), and each send may override them.
public struct SendOptions: Sendable, Hashable {
    /// Persistent (the JMS default) or non-persistent.
    public var deliveryMode: DeliveryMode = .persistent
    /// 0 (lowest) to 9 (highest); 4 by default. Consumers get higher priorities first.
    public var priority: Int = 4
    /// How long the message stays deliverable; `nil` (the default) for ever.
    public var timeToLive: Duration? = nil
    /// How long after sending the message becomes deliverable (JMS 2.0 delivery delay); zero by default.
    public var deliveryDelay: Duration = .zero

    /// Creates options; every argument has the JMS default.
    /// - Parameters:
    ///   - deliveryMode: Persistent or non-persistent.
    ///   - priority: 0 to 9.
    ///   - timeToLive: Lifetime, or `nil` for ever.
    ///   - deliveryDelay: Delay before the message is deliverable.
    public init(deliveryMode: DeliveryMode = .persistent, priority: Int = 4, timeToLive: Duration? = nil, deliveryDelay: Duration = .zero) {
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.timeToLive = timeToLive
        self.deliveryDelay = deliveryDelay
    }

    /// Non-persistent sends with the other defaults.
    public static var nonPersistent: SendOptions { SendOptions(deliveryMode: .nonPersistent) }

    func validate() throws(ConveyorError) {
        guard (0...9).contains(priority) else {
            throw ConveyorError(.messageFormat, "priority \(priority) is out of range; use 0 (lowest) to 9 (highest)")
        }
        if let timeToLive, timeToLive < .zero {
            throw ConveyorError(.messageFormat, "time-to-live \(timeToLive) is negative; use nil for messages that never expire")
        }
        if deliveryDelay < .zero {
            throw ConveyorError(.messageFormat, "delivery delay \(deliveryDelay) is negative")
        }
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
