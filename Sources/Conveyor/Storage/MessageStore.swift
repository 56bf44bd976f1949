/// Where a stored message reference lives: a queue, or a durable subscription of a topic.
///
/// A message sent to a queue has one reference; a persistent message published to a topic has one
/// reference per durable subscription it matched, while its body is stored once.
public enum StoreQueueKey: Hashable, Sendable, CustomStringConvertible {
    /// A queue, by name.
    case queue(String)
    /// A durable subscription, by its identity.
    case subscription(SubscriptionKey)

    /// `queue://name` or `subscription://clientID:name`.
    public var description: String {
        switch self {
        case .queue(let name): "queue://\(name)"
        case .subscription(let key): "subscription://\(key)"
        }
    }
}

/// The identity of a durable (or shared) subscription: client identifier plus name.
public struct SubscriptionKey: Hashable, Sendable, CustomStringConvertible {
    /// The client identifier of the connection that created it; `nil` for shared subscriptions
    /// created without one (JMS 2.0 allows this).
    public var clientID: String?
    /// The subscription name.
    public var name: String

    /// Creates a key.
    /// - Parameters:
    ///   - clientID: The owning client identifier, if any.
    ///   - name: The subscription name.
    public init(clientID: String?, name: String) {
        self.clientID = clientID
        self.name = name
    }

    /// `clientID:name`, or just `name` without a client identifier.
    public var description: String { clientID.map { "\($0):\(name)" } ?? name }
}

/// What the store keeps about a durable subscription so it survives a restart.
public struct SubscriptionRecord: Hashable, Sendable {
    /// The subscription's identity.
    public var key: SubscriptionKey
    /// The topic it subscribes to.
    public var topic: String
    /// The selector text, if any.
    public var selector: String?
    /// Whether messages published by the subscriber's own connection are skipped.
    public var noLocal: Bool
    /// Whether several consumers may share the subscription (JMS 2.0 shared durable).
    public var isShared: Bool

    /// Creates a record.
    /// - Parameters:
    ///   - key: The subscription's identity.
    ///   - topic: The topic name.
    ///   - selector: The selector text, if any.
    ///   - noLocal: Whether own-connection messages are skipped.
    ///   - isShared: Whether consumers share it.
    public init(key: SubscriptionKey, topic: String, selector: String?, noLocal: Bool, isShared: Bool) {
        self.key = key
        self.topic = topic
        self.selector = selector
        self.noLocal = noLocal
        self.isShared = isShared
    }
}

/// A persistent message as the broker hands it to a store: the message, its broker-wide sequence
/// number (the store key and the delivery order within a priority) and the queues it goes to.
public struct StoredMessage: Sendable {
    /// The broker-wide sequence number; unique in the store.
    public var sequence: UInt64
    /// The message with all its headers set.
    public var message: Message
    /// The queues and durable subscriptions that hold a reference to it.
    public var targets: [StoreQueueKey]

    /// Creates a stored message.
    /// - Parameters:
    ///   - sequence: The broker-wide sequence number.
    ///   - message: The message.
    ///   - targets: Where references to it go.
    public init(sequence: UInt64, message: Message, targets: [StoreQueueKey]) {
        self.sequence = sequence
        self.message = message
        self.targets = targets
    }
}

/// One change to the store. A ``StoreBatch`` of them is applied atomically.
public enum StoreOperation: Sendable {
    /// Store a message and a reference to it from each of its targets.
    case add(StoredMessage)
    /// Remove one reference (an acknowledgement); the message goes when its last reference does.
    case remove(sequence: UInt64, from: StoreQueueKey)
    /// Record how many times a referenced message has been handed to consumers, so that after a
    /// restart it is flagged redelivered.
    case setDeliveryCount(sequence: UInt64, in: StoreQueueKey, count: Int)
    /// Create or replace a durable subscription.
    case saveSubscription(SubscriptionRecord)
    /// Delete a durable subscription and every reference it holds.
    case deleteSubscription(SubscriptionKey)
    /// Remove every reference a queue holds.
    case purge(StoreQueueKey)
}

/// A group of changes the store applies in one transaction: all or nothing.
public struct StoreBatch: Sendable {
    /// The changes, applied in order.
    public var operations: [StoreOperation]

    /// Creates a batch.
    /// - Parameter operations: The changes, applied in order.
    public init(_ operations: [StoreOperation] = []) {
        self.operations = operations
    }

    /// Whether the batch has nothing to do.
    public var isEmpty: Bool { operations.isEmpty }

    /// Appends one change.
    /// - Parameter operation: The change.
    public mutating func append(_ operation: StoreOperation) { operations.append(operation) }
}

/// A message reference found when a store is opened.
public struct RecoveredMessage: Sendable {
    /// The broker-wide sequence number.
    public var sequence: UInt64
    /// The message with its headers as they were sent.
    public var message: Message
    /// How many times it had been handed to consumers without being acknowledged.
    public var deliveryCount: Int

    /// Creates a recovered reference.
    /// - Parameters:
    ///   - sequence: The broker-wide sequence number.
    ///   - message: The stored message.
    ///   - deliveryCount: The recorded delivery count.
    public init(sequence: UInt64, message: Message, deliveryCount: Int) {
        self.sequence = sequence
        self.message = message
        self.deliveryCount = deliveryCount
    }
}

/// Everything a broker needs from a store when it starts.
public struct StoreRecovery: Sendable {
    /// The durable subscriptions.
    public var subscriptions: [SubscriptionRecord]
    /// The references each queue and subscription holds, in any order (the broker sorts them).
    public var messages: [StoreQueueKey: [RecoveredMessage]]
    /// The highest sequence number ever stored (0 for an empty store).
    public var highestSequence: UInt64

    /// Creates a recovery result.
    /// - Parameters:
    ///   - subscriptions: The durable subscriptions.
    ///   - messages: The references per queue or subscription.
    ///   - highestSequence: The highest sequence number stored.
    public init(subscriptions: [SubscriptionRecord], messages: [StoreQueueKey: [RecoveredMessage]], highestSequence: UInt64) {
        self.subscriptions = subscriptions
        self.messages = messages
        self.highestSequence = highestSequence
    }
}

/// The storage engine behind a broker: the one seam between the broker and persistence.
///
/// A store is small and batch-oriented. The broker turns every change that must survive a restart
/// (a persistent send, an acknowledgement, a transaction commit, a durable subscription) into one
/// ``StoreBatch`` and calls ``commit(_:)``; the store applies it atomically and, in its durable
/// mode, returns only when it is on disk. Non-persistent messages never reach the store.
///
/// The conformance suite in the tests defines what a store must do; every engine runs it.
public protocol MessageStore: AnyObject, Sendable {
    /// A short name for logs and benchmarks ("memory", "file", "lmdb").
    var name: String { get }

    /// Whether ``commit(_:)`` may block the calling thread (disk I/O, `fsync`). The broker then calls
    /// it off Swift's cooperative thread pool.
    var commitMayBlock: Bool { get }

    /// Opens the store and returns what it holds. Called once by a broker before anything else.
    /// - Throws: ``ConveyorError/Code/storage`` if the store cannot be opened or read.
    func open() throws(ConveyorError) -> StoreRecovery

    /// Applies a batch atomically: either every operation takes effect or none does.
    /// - Parameter batch: The changes.
    /// - Throws: ``ConveyorError/Code/storage`` (nothing of the batch applied) or
    ///   ``ConveyorError/Code/resourceAllocation`` when a storage limit is reached.
    func commit(_ batch: StoreBatch) throws(ConveyorError)

    /// Releases files and memory. The store may be opened again afterwards.
    func close()
}
