/// Per-consumer settings beyond the selector.
public struct ConsumerOptions: Sendable, Hashable {
    /// An exclusive queue consumer receives every message of the queue while it is open; other
    /// consumers (exclusive ones included) wait as stand-bys and take over, in order, when it closes.
    /// This gives strict ordering with fail-over. Ignored for topic subscriptions.
    public var exclusive = false

    /// The defaults: not exclusive.
    public init() {}

    /// Creates options.
    /// - Parameter exclusive: Whether the consumer is exclusive.
    public init(exclusive: Bool) {
        self.exclusive = exclusive
    }

    /// An exclusive consumer.
    public static var exclusive: ConsumerOptions { ConsumerOptions(exclusive: true) }
}
