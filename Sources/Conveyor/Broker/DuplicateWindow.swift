import DequeModule

/// The most recent duplicate-detection IDs seen by one destination, bounded in size.
///
/// Inserting an ID already in the window reports a duplicate; when full, the oldest ID is forgotten.
struct DuplicateWindow: Sendable {
    let capacity: Int
    private var order = Deque<String>()
    private var members = Set<String>()

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Records `id`.
    /// - Returns: `false` if it was already in the window (a duplicate), `true` if it is new.
    mutating func insert(_ id: String) -> Bool {
        guard capacity > 0 else { return true }
        guard members.insert(id).inserted else { return false }
        order.append(id)
        if order.count > capacity, let oldest = order.popFirst() {
            members.remove(oldest)
        }
        return true
    }

    /// Forgets `id` (its send failed), so that it is accepted again.
    mutating func remove(_ id: String) {
        guard members.remove(id) != nil, let index = order.lastIndex(of: id) else { return }
        order.remove(at: index)
    }
}

extension Message {
    /// The property that carries an application's idempotency key. A send whose message carries an
    /// ID that the destination has already seen (within ``BrokerConfiguration/duplicateDetectionWindow``)
    /// is accepted but stored and delivered only once: the idempotent producer.
    public static let duplicateIDProperty = "JMS_ConveyorDuplicateID"

    var duplicateID: String? {
        guard hasProperties, let value = properties[Message.duplicateIDProperty] else { return nil }
        return value.description
    }
}
