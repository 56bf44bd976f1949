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

/// A message reference read from a store, with its message and delivery count.
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

/// How many references a queue or subscription holds in a store, and roughly how many body bytes.
public struct StoredQueueSummary: Hashable, Sendable {
    /// The number of references (waiting or delivered-but-unacknowledged messages).
    public var count: Int
    /// The body bytes of those messages (an engine may report an estimate, such as encoded sizes).
    public var bytes: Int

    /// Creates a summary.
    /// - Parameters:
    ///   - count: The number of references.
    ///   - bytes: Their body bytes.
    public init(count: Int, bytes: Int) {
        self.count = count
        self.bytes = bytes
    }
}

/// What a broker learns from a store when it opens it: everything except the messages themselves,
/// which it reads with ``MessageStore/messages(in:after:limit:)`` as it needs them.
public struct StoreRecovery: Sendable {
    /// The durable subscriptions.
    public var subscriptions: [SubscriptionRecord]
    /// The queues and subscriptions that hold references, with how many.
    public var queues: [StoreQueueKey: StoredQueueSummary]
    /// The highest sequence number ever stored (0 for an empty store).
    public var highestSequence: UInt64

    /// Creates a recovery result.
    /// - Parameters:
    ///   - subscriptions: The durable subscriptions.
    ///   - queues: The queues and subscriptions holding references, with their sizes.
    ///   - highestSequence: The highest sequence number stored.
    public init(subscriptions: [SubscriptionRecord], queues: [StoreQueueKey: StoredQueueSummary], highestSequence: UInt64) {
        self.subscriptions = subscriptions
        self.queues = queues
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

    /// Whether ``recordDeliveries(_:)`` may block the calling thread on I/O; ``commitMayBlock`` by
    /// default. A store that records deliveries with a plain write and no sync says `false`, and the
    /// broker then records them on the consumer's own thread, sparing it two thread hand-offs
    /// before each fetched batch is delivered.
    var recordingDeliveriesMayBlock: Bool { get }

    /// Whether the broker should keep only a window of each durable queue's backlog in memory and
    /// read the rest through ``messages(in:after:limit:)`` as consumers drain it (`true` for the
    /// disk engines, so a backlog larger than memory stays on disk; `false` for the memory store).
    var pagesMessages: Bool { get }

    /// Opens the store and says what it holds: subscriptions, and how many references each queue
    /// and subscription has; not the messages themselves. Called once by a broker before anything else.
    /// - Throws: ``ConveyorError/Code/storage`` if the store cannot be opened or read.
    func open() throws(ConveyorError) -> StoreRecovery

    /// Reads the references a queue or subscription holds with sequence numbers above `sequence`,
    /// in ascending sequence order, with their messages and delivery counts: at most `limit`.
    ///
    /// Fewer than `limit` results means there are no more (at the moment of the read). Safe to call
    /// while commits run on other threads; each call sees one consistent state.
    /// - Parameters:
    ///   - queue: The queue or subscription.
    ///   - sequence: Only references above this sequence number (0 for all).
    ///   - limit: The most references to return.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or the data cannot be read.
    func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage]

    /// Applies a batch atomically: either every operation takes effect or none does.
    /// - Parameter batch: The changes.
    /// - Throws: ``ConveyorError/Code/storage`` (nothing of the batch applied) or
    ///   ``ConveyorError/Code/resourceAllocation`` when a storage limit is reached.
    func commit(_ batch: StoreBatch) throws(ConveyorError)

    /// Commits a batch without blocking the calling thread, if a write already under way can take
    /// it (in a disk store, a group commit's leader waiting for one more committer). Returns `true`
    /// if it took the batch: `completion` is then called once, with what ``commit(_:)`` would
    /// have returned or thrown, on the thread that wrote the batch. Returns `false`, having done
    /// nothing, if the batch would have to wait or be written by the caller's thread.
    ///
    /// The broker tries this first for a store whose commits may block (``commitMayBlock``), from
    /// Swift's cooperative pool, and calls ``commit(_:)`` on another thread only if it says no: a
    /// transaction that completes a group then never changes threads to be written. The default
    /// says no.
    /// - Parameters:
    ///   - batch: The changes.
    ///   - completion: Called with the outcome if the batch was taken.
    /// - Returns: Whether the batch was taken.
    func commitWithoutBlocking(_ batch: StoreBatch, completion: @escaping @Sendable (Result<Void, ConveyorError>) -> Void) -> Bool

    /// Writes the delivery counts of messages about to be delivered (a batch of
    /// ``StoreOperation/setDeliveryCount(sequence:in:count:)`` operations), so that if the process
    /// crashes before they are acknowledged they come back flagged redelivered.
    ///
    /// Unlike ``commit(_:)`` this need not wait for a sync: when it returns the counts must survive
    /// a crash of the process (they are in the operating system's hands), and they become safe from
    /// a power loss with the next durable commit. A power loss in between may lose them, and the
    /// messages then come back without the redelivered flag; nothing else is lost. A store that has
    /// no cheaper way simply commits the batch (the default).
    /// - Parameter batch: Delivery-count updates, applied atomically.
    /// - Throws: ``ConveyorError/Code/storage`` (nothing of the batch applied).
    func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError)

    /// Releases files and memory. The store may be opened again afterwards.
    func close()
}

extension MessageStore {
    /// Takes no batch: the broker commits through ``commit(_:)``.
    public func commitWithoutBlocking(_ batch: StoreBatch, completion: @escaping @Sendable (Result<Void, ConveyorError>) -> Void) -> Bool {
        false
    }

    /// ``commitMayBlock``: a store that records deliveries by committing them blocks as a commit does.
    public var recordingDeliveriesMayBlock: Bool { commitMayBlock }

    /// Commits the batch: a store without a cheaper way to record deliveries makes them as durable
    /// as any other change.
    /// - Parameter batch: Delivery-count updates.
    /// - Throws: What ``commit(_:)`` throws.
    public func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError) {
        try commit(batch)
    }
}
