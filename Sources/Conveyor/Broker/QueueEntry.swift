/// A message waiting in, or delivered from, a ``MessageQueue``.
struct QueueEntry: Sendable {
    /// The broker-wide sequence number: the store key and the order within a priority.
    let sequence: UInt64
    /// The message. Its `deliveryCount` counts the deliveries so far.
    var message: Message
    /// The earliest time (milliseconds since 1970) the message may be delivered: its delivery time,
    /// or the end of a redelivery delay.
    var notBefore: Int64

    init(sequence: UInt64, message: Message) {
        self.sequence = sequence
        self.message = message
        self.notBefore = message.deliveryTime
    }

    var priority: Int { message.priority }

    /// The message, moved out of the entry.
    consuming func intoMessage() -> Message { message }
    var isPersistent: Bool { message.deliveryMode == .persistent }

    /// Whether the message's time-to-live has run out at `now`.
    func isExpired(at now: Int64) -> Bool {
        message.expiration != 0 && message.expiration <= now
    }

    /// The message group it belongs to (`JMSXGroupID`), if any.
    var groupID: String? {
        guard message.hasProperties, case .string(let group)? = message.properties["JMSXGroupID"] else { return nil }
        return group
    }
}

/// What a consumer taking from a queue does with one waiting message.
enum TakeDecision {
    /// Deliver it to this consumer.
    case take
    /// Leave it for another consumer (selector, message group, exclusivity).
    case skip
    /// Remove it without delivering it: expired, or redelivered too often.
    case discard(DiscardReason)
}

/// Why a message left a queue without being delivered.
enum DiscardReason: Sendable, Equatable {
    /// Its time-to-live ran out.
    case expired
    /// It was delivered more often than the redelivery policy allows.
    case tooManyDeliveries(maximumRedeliveries: Int)
}

/// A message removed from a queue without delivery, to be dead-lettered or counted as expired.
struct DiscardedEntry: Sendable {
    var entry: QueueEntry
    var reason: DiscardReason
}
