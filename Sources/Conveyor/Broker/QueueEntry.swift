/// A message waiting in, or delivered from, a ``MessageQueue``.
struct QueueEntry: Sendable {
    /// The broker-wide sequence number: the store key and the order within a priority.
    let sequence: UInt64
    /// The message. Its `deliveryCount` counts the deliveries so far.
    var message: Message

    var priority: Int { message.priority }
    var isPersistent: Bool { message.deliveryMode == .persistent }
}
