import Synchronization

/// One subscription of a topic: its filter and the ``MessageQueue`` that holds its messages.
///
/// Non-durable subscriptions live as long as their consumer (or, when shared, their last consumer);
/// durable ones live until unsubscribed and keep their persistent messages in the store.
final class Subscription: Sendable {
    enum Kind: Sendable, Equatable {
        case nonDurable
        case sharedNonDurable
        case durable
        case sharedDurable

        var isDurable: Bool { self == .durable || self == .sharedDurable }
        var isShared: Bool { self == .sharedNonDurable || self == .sharedDurable }
    }

    let kind: Kind
    let topic: Topic
    /// The identity of a durable or shared subscription; `nil` for a plain non-durable one.
    let key: SubscriptionKey?
    let selector: Selector?
    let noLocal: Bool
    /// The connection whose messages `noLocal` skips (non-durable subscriptions).
    let ownerConnectionID: UInt64
    /// The client whose messages `noLocal` skips (durable subscriptions outlive connections).
    let ownerClientID: String?
    let queue: MessageQueue
    /// Where a non-durable subscription keeps its messages in a shared store (other processes
    /// publish into it there); `nil` otherwise.
    let storedAs: SubscriptionKey?
    private let consumers = Mutex(0)

    init(kind: Kind, topic: Topic, key: SubscriptionKey?, selector: Selector?, noLocal: Bool,
         ownerConnectionID: UInt64, ownerClientID: String?, displayName: String, configuration: BrokerConfiguration,
         storedAs: SubscriptionKey? = nil, pager: QueuePager? = nil) {
        self.kind = kind
        self.topic = topic
        self.key = key
        self.selector = selector
        self.noLocal = noLocal
        self.ownerConnectionID = ownerConnectionID
        self.ownerClientID = ownerClientID
        self.storedAs = kind.isDurable ? nil : storedAs
        let storeKey: StoreQueueKey? = (kind.isDurable ? key : self.storedAs).map { .subscription($0) }
        self.queue = MessageQueue(
            displayName: displayName, baseName: topic.name, storeKey: storeKey,
            policy: configuration.policy(for: topic.name), duplicateWindow: 0, pager: storeKey != nil ? pager : nil)
    }

    /// The record the store keeps for a durable subscription (or a non-durable one in a shared store).
    var record: SubscriptionRecord? {
        guard let key = kind.isDurable ? key : storedAs else { return nil }
        return SubscriptionRecord(key: key, topic: topic.name, selector: selector?.expression, noLocal: noLocal,
                                  isShared: kind.isShared && kind.isDurable)
    }

    /// Whether a message published by `connectionID` (of client `clientID`) belongs in this subscription.
    func accepts(_ message: Message, fromConnection connectionID: UInt64, clientID: String?) -> Bool {
        if noLocal {
            if kind.isDurable {
                if let ownerClientID, ownerClientID == clientID { return false }
            } else if connectionID == ownerConnectionID {
                return false
            }
        }
        return selector?.matchesDelivery(of: message) ?? true
    }

    /// Counts a new consumer (the consumer registers itself with ``queue``).
    /// - Throws: ``ConveyorError/Code/illegalState`` when an unshared subscription already has one.
    func attachConsumer() throws(ConveyorError) {
        try consumers.withLock { (count) throws(ConveyorError) in
            if !kind.isShared, count > 0 {
                throw .illegalState(
                    "the durable subscription '\(key?.description ?? "")' already has an active consumer; close it first or use a shared subscription")
            }
            count += 1
        }
    }

    /// Counts a consumer gone.
    /// - Returns: How many consumers remain.
    func detachConsumer(_ consumer: MessageConsumer) -> Int {
        queue.removeConsumer(consumer)
        return consumers.withLock { count in
            count -= 1
            return count
        }
    }

    var activeConsumers: Int { consumers.withLock { $0 } }
}

/// A topic: the list of its subscriptions, copied on write so publishing reads it without waiting.
final class TopicRouter: Sendable {
    let topic: Topic
    private let subscriptions = Mutex<[Subscription]>([])
    private let duplicates: Mutex<DuplicateWindow>
    private let deleted = Atomic<Bool>(false)

    /// Whether this (temporary) topic was deleted, explicitly or with its connection: sends to it fail.
    var isDeleted: Bool { deleted.load(ordering: .acquiring) }

    /// Marks the topic deleted; see ``isDeleted``.
    func markDeleted() { deleted.store(true, ordering: .releasing) }

    init(topic: Topic, duplicateWindow: Int) {
        self.topic = topic
        self.duplicates = Mutex(DuplicateWindow(capacity: duplicateWindow))
    }

    /// Records a duplicate-detection ID.
    /// - Returns: `false` if this topic has already seen it.
    func admitDuplicateID(_ id: String) -> Bool {
        duplicates.withLock { $0.insert(id) }
    }

    /// Forgets a duplicate-detection ID whose send failed, so that a retry is accepted.
    func forgetDuplicateID(_ id: String) {
        duplicates.withLock { $0.remove(id) }
    }

    /// The current subscriptions (a copy-on-write snapshot: no allocation).
    var current: [Subscription] { subscriptions.withLock { $0 } }

    func add(_ subscription: Subscription) {
        subscriptions.withLock { $0.append(subscription) }
    }

    func remove(_ subscription: Subscription) {
        subscriptions.withLock { $0.removeAll { $0 === subscription } }
    }
}
