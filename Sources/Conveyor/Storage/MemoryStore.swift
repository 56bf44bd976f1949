import Synchronization

/// A store that keeps everything in the process's memory.
///
/// Persistent messages survive closing and reopening a ``Broker`` on the same `MemoryStore` instance,
/// but not the end of the process. Use it for tests, for transient workloads, and as the ceiling the
/// disk-backed stores are measured against.
public final class MemoryStore: MessageStore {
    /// A queue's reference to a stored message.
    ///
    /// Each reference holds its own copy of the message: copies share the body and headers
    /// (copy-on-write), so a message sent to several queues is still kept once, and no separate
    /// table of bodies with reference counts is needed.
    private struct Reference {
        var message: Message
        var deliveryCount: Int
    }

    private struct State {
        var isOpen = false
        /// The slot in ``references`` of each queue that ever held a reference. A queue keeps its
        /// slot when emptied or purged, so slot numbers stay valid.
        var slots: [StoreQueueKey: Int] = [:]
        /// Per queue, by slot: the messages it references, by sequence.
        var references: [SequenceMap<Reference>] = []
        var subscriptions: [SubscriptionKey: SubscriptionRecord] = [:]
        var highestSequence: UInt64 = 0

        /// The slot of `key`, created if it has none.
        mutating func slot(for key: StoreQueueKey) -> Int {
            if let slot = slots[key] { return slot }
            references.append(SequenceMap())
            slots[key] = references.count - 1
            return references.count - 1
        }
    }

    /// The slots of the queues a batch touched so far: the operations of a batch concern a few
    /// queues (one queue, or a topic's subscriptions), and comparing keys with the same storage is far
    /// cheaper than hashing them.
    private struct SlotCache {
        /// How many queues it remembers; a batch touching more looks the others up each time.
        static let capacity = 4
        var entries: [(key: StoreQueueKey, slot: Int)] = []

        mutating func slot(for key: StoreQueueKey, in state: inout State) -> Int {
            for entry in entries where entry.key == key { return entry.slot }
            let slot = state.slot(for: key)
            if entries.count < Self.capacity { entries.append((key, slot)) }
            return slot
        }
    }

    private let state = Mutex(State())

    /// Creates an empty memory store.
    public init() {}

    /// `"memory"`.
    public var name: String { "memory" }

    /// `false`: commits only touch memory.
    public var commitMayBlock: Bool { false }

    /// `false`: the messages are in memory anyway, so the broker holds them all.
    public var pagesMessages: Bool { false }

    /// Marks the store open and says what it holds.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is already open (one broker at a time).
    public func open() throws(ConveyorError) -> StoreRecovery {
        try state.withLock { (state) throws(ConveyorError) -> StoreRecovery in
            if state.isOpen {
                throw ConveyorError(.storage, "the memory store is already open in another broker; close that broker first")
            }
            state.isOpen = true
            var queues: [StoreQueueKey: StoredQueueSummary] = [:]
            for (key, slot) in state.slots where !state.references[slot].isEmpty {
                var bytes = 0
                state.references[slot].forEach { bytes += $0.message.body.byteCount }
                queues[key] = StoredQueueSummary(count: state.references[slot].count, bytes: bytes)
            }
            return StoreRecovery(
                subscriptions: Array(state.subscriptions.values), queues: queues,
                highestSequence: state.highestSequence)
        }
    }

    /// The references of a queue above `sequence`, ascending.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is not open.
    public func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
        try state.withLock { (state) throws(ConveyorError) -> [RecoveredMessage] in
            guard state.isOpen else {
                throw ConveyorError(.storage, "the memory store is closed; open a broker on it first")
            }
            guard let slot = state.slots[queue], limit > 0 else { return [] }
            return state.references[slot].elements(after: sequence, limit: limit).map { item in
                RecoveredMessage(sequence: item.sequence, message: item.value.message, deliveryCount: item.value.deliveryCount)
            }
        }
    }

    /// Applies the batch under one lock, so other threads see all of it or none of it.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is not open.
    public func commit(_ batch: StoreBatch) throws(ConveyorError) {
        try state.withLock { (state) throws(ConveyorError) in
            guard state.isOpen else {
                throw ConveyorError(.storage, "the memory store is closed; open a broker on it first")
            }
            var cache = SlotCache()
            for index in batch.operations.indices {
                Self.apply(batch.operations[index], to: &state, cache: &cache)
            }
        }
    }

    /// Marks the store closed; its contents stay for the next broker.
    public func close() {
        state.withLock { $0.isOpen = false }
    }

    private static func apply(_ operation: StoreOperation, to state: inout State, cache: inout SlotCache) {
        switch operation {
        case .add(let stored):
            state.highestSequence = max(state.highestSequence, stored.sequence)
            for target in stored.targets {
                state.references[cache.slot(for: target, in: &state)].insert(Reference(message: stored.message, deliveryCount: 0), for: stored.sequence)
            }
        case .remove(let sequence, let key):
            state.references[cache.slot(for: key, in: &state)].removeValue(for: sequence)
        case .setDeliveryCount(let sequence, let key, let count):
            state.references[cache.slot(for: key, in: &state)].update(sequence) { $0.deliveryCount = count }
        case .saveSubscription(let record):
            state.subscriptions[record.key] = record
        case .deleteSubscription(let key):
            state.subscriptions[key] = nil
            purge(.subscription(key), in: &state)
        case .purge(let key):
            purge(key, in: &state)
        }
    }

    private static func purge(_ key: StoreQueueKey, in state: inout State) {
        guard let slot = state.slots[key] else { return }
        state.references[slot] = SequenceMap()
    }
}

extension MessageStore where Self == MemoryStore {
    /// A new, empty ``MemoryStore``: `Broker(store: .memory)`.
    public static var memory: MemoryStore { MemoryStore() }
}
