import Synchronization

/// A store that keeps everything in the process's memory.
///
/// Persistent messages survive closing and reopening a ``Broker`` on the same `MemoryStore` instance,
/// but not the end of the process. Use it for tests, for transient workloads, and as the ceiling the
/// disk-backed stores are measured against.
public final class MemoryStore: MessageStore {
    private struct StoredBody {
        var message: Message
        var references: Int
    }

    private struct State {
        var isOpen = false
        var bodies: [UInt64: StoredBody] = [:]
        var references: [StoreQueueKey: [UInt64: Int]] = [:]
        var subscriptions: [SubscriptionKey: SubscriptionRecord] = [:]
        var highestSequence: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Creates an empty memory store.
    public init() {}

    /// `"memory"`.
    public var name: String { "memory" }

    /// `false`: commits only touch memory.
    public var commitMayBlock: Bool { false }

    /// Returns the store's contents.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is already open (one broker at a time).
    public func open() throws(ConveyorError) -> StoreRecovery {
        try state.withLock { (state) throws(ConveyorError) -> StoreRecovery in
            if state.isOpen {
                throw ConveyorError(.storage, "the memory store is already open in another broker; close that broker first")
            }
            state.isOpen = true
            var messages: [StoreQueueKey: [RecoveredMessage]] = [:]
            for (key, references) in state.references {
                messages[key] = references.compactMap { sequence, count in
                    state.bodies[sequence].map {
                        RecoveredMessage(sequence: sequence, message: $0.message, deliveryCount: count)
                    }
                }
            }
            return StoreRecovery(
                subscriptions: Array(state.subscriptions.values), messages: messages,
                highestSequence: state.highestSequence)
        }
    }

    /// Applies the batch under one lock, so other threads see all of it or none of it.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is not open.
    public func commit(_ batch: StoreBatch) throws(ConveyorError) {
        try state.withLock { (state) throws(ConveyorError) in
            guard state.isOpen else {
                throw ConveyorError(.storage, "the memory store is closed; open a broker on it first")
            }
            for operation in batch.operations {
                Self.apply(operation, to: &state)
            }
        }
    }

    /// Marks the store closed; its contents stay for the next broker.
    public func close() {
        state.withLock { $0.isOpen = false }
    }

    private static func apply(_ operation: StoreOperation, to state: inout State) {
        switch operation {
        case .add(let stored):
            state.bodies[stored.sequence] = StoredBody(message: stored.message, references: stored.targets.count)
            state.highestSequence = max(state.highestSequence, stored.sequence)
            for target in stored.targets {
                state.references[target, default: [:]][stored.sequence] = 0
            }
        case .remove(let sequence, let key):
            if state.references[key]?.removeValue(forKey: sequence) != nil {
                release(sequence, in: &state)
            }
        case .setDeliveryCount(let sequence, let key, let count):
            if state.references[key]?[sequence] != nil {
                state.references[key]?[sequence] = count
            }
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
        guard let references = state.references.removeValue(forKey: key) else { return }
        for sequence in references.keys {
            release(sequence, in: &state)
        }
    }

    private static func release(_ sequence: UInt64, in state: inout State) {
        guard var body = state.bodies[sequence] else { return }
        body.references -= 1
        state.bodies[sequence] = body.references > 0 ? body : nil
    }
}

extension MessageStore where Self == MemoryStore {
    /// A new, empty ``MemoryStore``: `Broker(store: .memory)`.
    public static var memory: MemoryStore { MemoryStore() }
}
