import DequeModule
import Synchronization

/// The dispatch unit of the broker: the messages waiting for one queue or one subscription, and the
/// consumers waiting for them.
///
/// A queue has one `MessageQueue`; a topic has one per subscription. Consumers pull batches from it
/// into their prefetch buffers under one short lock; a producer appending to it wakes a waiting
/// consumer only when one is parked, so a busy consumer costs the producer nothing but the append.
final class MessageQueue: Sendable {
    /// The name shown in statistics (`queue://orders`, `subscription://billing:audit`).
    let displayName: String
    /// Where the store keeps this queue's persistent messages; `nil` for non-durable subscriptions,
    /// whose messages are never stored.
    let storeKey: StoreQueueKey?

    private struct State {
        var pending = PendingMessages()
        /// Consumers that found nothing and wait to be woken, oldest first.
        var hungry: [MessageConsumer] = []
        var consumerCount = 0
        var isDeleted = false
    }

    private let state = Mutex(State())
    private let enqueuedCount = Atomic<Int>(0)
    private let dequeuedCount = Atomic<Int>(0)
    private let inFlightCount = Atomic<Int>(0)

    init(displayName: String, storeKey: StoreQueueKey?) {
        self.displayName = displayName
        self.storeKey = storeKey
    }

    /// Whether messages of this queue are written to the store when persistent.
    var isDurable: Bool { storeKey != nil }

    // MARK: Producing

    /// Appends messages and wakes consumers that can take them.
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if the queue was deleted.
    func enqueue(_ entries: some Collection<QueueEntry>) throws(ConveyorError) {
        let toWake = try state.withLock { (state) throws(ConveyorError) -> [MessageConsumer] in
            if state.isDeleted {
                throw .invalidDestination("\(displayName) has been deleted; messages can no longer be sent to it")
            }
            for entry in entries { state.pending.append(entry) }
            return Self.takeWakeable(from: &state, for: entries)
        }
        enqueuedCount.add(entries.count, ordering: .relaxed)
        for consumer in toWake { consumer.wake() }
    }

    /// Appends one message; see ``enqueue(_:)-(Collection)``.
    func enqueue(_ entry: QueueEntry) throws(ConveyorError) {
        try enqueue(CollectionOfOne(entry))
    }

    /// Puts delivered or prefetched messages back (rollback, recover, a closing consumer).
    /// Messages of a deleted queue are dropped.
    func putBack(_ entries: [QueueEntry], wereDelivered: Bool) {
        guard !entries.isEmpty else { return }
        let toWake = state.withLock { state -> [MessageConsumer] in
            guard !state.isDeleted else { return [] }
            for entry in entries { state.pending.putBack(entry) }
            return Self.takeWakeable(from: &state, for: entries)
        }
        if wereDelivered { inFlightCount.subtract(entries.count, ordering: .relaxed) }
        for consumer in toWake { consumer.wake() }
    }

    /// Picks the parked consumers to wake for new messages: for each message, the longest-waiting
    /// consumer whose selector accepts it.
    private static func takeWakeable(from state: inout State, for entries: some Collection<QueueEntry>) -> [MessageConsumer] {
        guard !state.hungry.isEmpty else { return [] }
        var toWake: [MessageConsumer] = []
        for entry in entries {
            guard let index = state.hungry.firstIndex(where: { $0.accepts(entry.message) }) else { continue }
            toWake.append(state.hungry.remove(at: index))
            if state.hungry.isEmpty { break }
        }
        return toWake
    }

    // MARK: Consuming

    /// Moves a fair share of the waiting messages the consumer accepts into its buffer, at most
    /// `limit`. When there are none, parks the consumer on this queue so the next matching message
    /// wakes it.
    /// - Returns: How many messages were moved.
    func fetch(for consumer: MessageConsumer, limit: Int, into buffer: inout Deque<QueueEntry>) -> Int {
        state.withLock { state in
            let share = max(1, min(limit, state.pending.count / max(1, state.consumerCount)))
            let before = buffer.count
            if consumer.selector == nil, share == 1 {
                if let entry = state.pending.popFirst() { buffer.append(entry) }
            } else {
                state.pending.take(upTo: share, into: &buffer) { consumer.accepts($0.message) }
            }
            let moved = buffer.count - before
            if moved == 0, !state.hungry.contains(where: { $0 === consumer }) {
                state.hungry.append(consumer)
            }
            return moved
        }
    }

    /// Counts a message handed to an application.
    func markDelivered() {
        inFlightCount.add(1, ordering: .relaxed)
    }

    /// Counts acknowledged messages: they leave the queue for good.
    func markAcknowledged(_ count: Int = 1) {
        inFlightCount.subtract(count, ordering: .relaxed)
        dequeuedCount.add(count, ordering: .relaxed)
    }

    /// Registers a consumer (for fair shares and statistics).
    func addConsumer() {
        state.withLock { $0.consumerCount += 1 }
    }

    /// Unregisters a consumer and forgets that it was waiting.
    func removeConsumer(_ consumer: MessageConsumer) {
        state.withLock { state in
            state.consumerCount -= 1
            state.hungry.removeAll { $0 === consumer }
        }
    }

    /// Whether a consumer is parked on this queue waiting for a message (for tests and diagnostics).
    func isWaiting(_ consumer: MessageConsumer) -> Bool {
        state.withLock { $0.hungry.contains { $0 === consumer } }
    }

    /// Forgets that a consumer waits (it gave up: timeout, no-wait receive, cancellation).
    ///
    /// If a producer had already picked this consumer to wake for a new message, that wake-up is
    /// passed on to the other waiting consumers, so the message is not left waiting behind it.
    func stopWaiting(_ consumer: MessageConsumer) {
        let toWake = state.withLock { state -> [MessageConsumer] in
            if let index = state.hungry.firstIndex(where: { $0 === consumer }) {
                state.hungry.remove(at: index)
                return []
            }
            guard !state.pending.isEmpty else { return [] }
            defer { state.hungry = [] }
            return state.hungry
        }
        for other in toWake { other.wake() }
    }

    // MARK: Administration

    /// The waiting messages, in delivery order, that `selector` accepts.
    func browse(selector: Selector?) -> [Message] {
        state.withLock { state in
            state.pending.snapshot().compactMap { entry in
                selector.map { $0.matches(entry.message) } ?? true ? entry.message : nil
            }
        }
    }

    /// Removes every waiting message and returns them.
    func removeAll(markingDeleted: Bool = false) -> [QueueEntry] {
        state.withLock { state in
            if markingDeleted { state.isDeleted = true }
            return state.pending.removeAll { _ in true }
        }
    }

    /// Current counters.
    func statistics(destination: String) -> DestinationStatistics {
        let (depth, bytes, consumers) = state.withLock { ($0.pending.count, $0.pending.byteCount, $0.consumerCount) }
        return DestinationStatistics(
            name: destination, depth: depth, depthBytes: bytes,
            inFlight: inFlightCount.load(ordering: .relaxed),
            enqueued: enqueuedCount.load(ordering: .relaxed),
            dequeued: dequeuedCount.load(ordering: .relaxed),
            consumers: consumers)
    }
}
