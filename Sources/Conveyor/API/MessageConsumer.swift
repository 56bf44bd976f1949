import Logging
import DequeModule
import Synchronization

/// Receives messages from a queue or a topic subscription (JMS `MessageConsumer`).
///
/// Three ways to consume, one per consumer:
/// - ``receive()``, ``receive(timeout:)`` and ``receiveNoWait()``: JMS synchronous receive. Waiting
///   suspends the task; it never blocks a thread.
/// - ``setMessageListener(_:)``: JMS `onMessage`. Listeners of one session run one at a time.
/// - ``messages``: the same stream as an `AsyncSequence`.
///
/// The consumer takes messages from its queue in batches (the broker's prefetch) and hands them back
/// if it closes before delivering them.
public final class MessageConsumer: Sendable {
    /// The signature of a message listener.
    public typealias Listener = @Sendable (Message) async throws -> Void

    /// The queue or topic this consumer reads.
    public let destination: Destination
    /// The session the consumer belongs to.
    public let session: Session

    let queue: MessageQueue
    /// The selector applied when taking from a queue. Topic subscriptions filter when publishing.
    let selector: Selector?
    let subscription: Subscription?
    private let prefetch: Int

    private struct State {
        var buffer = Deque<QueueEntry>()
        var isClosed = false
        var listener: Listener?
    }

    private let state = Mutex(State())
    private let listening = Atomic<Bool>(false)
    private let parker = Parker()
    /// How many receives are parked waiting for a message; for tests.
    var parkedReceives: Int { parker.parkedCount }

    init(session: Session, destination: Destination, queue: MessageQueue, selector: Selector?, subscription: Subscription?, exclusive: Bool) {
        self.session = session
        self.destination = destination
        self.queue = queue
        self.selector = selector
        self.subscription = subscription
        self.prefetch = max(1, session.broker.configuration.prefetch)
        queue.addConsumer(self, exclusive: exclusive)
    }

    /// The consumer's message selector, if it has one.
    public var messageSelector: String? { (selector ?? subscription?.selector)?.expression }

    /// Whether ``close()`` has been called (directly or by closing the session or connection).
    public var isClosed: Bool { state.withLock { $0.isClosed } }

    var hasListener: Bool { listening.load(ordering: .acquiring) }

    func accepts(_ message: Message) -> Bool {
        selector?.matchesDelivery(of: message) ?? true
    }

    /// Something this consumer may be waiting for happened: a message arrived, the connection started.
    func wake() {
        if hasListener {
            session.listenerParker.unpark()
        } else {
            parker.unpark()
        }
    }

    // MARK: Synchronous receive

    /// Waits for the next message, for as long as it takes.
    /// - Returns: The message, or `nil` if the consumer is closed or the task cancelled while waiting.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the consumer is closed or has a listener.
    public func receive() async throws(ConveyorError) -> Message? {
        try await receive(deadline: nil, waits: true)
    }

    /// Waits up to `timeout` for the next message.
    /// - Parameter timeout: How long to wait.
    /// - Returns: The message, or `nil` on timeout, close or cancellation.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the consumer is closed or has a listener.
    public func receive(timeout: Duration) async throws(ConveyorError) -> Message? {
        try await receive(deadline: .now + timeout, waits: true)
    }

    /// Returns the next message if one is ready now, else `nil`.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the consumer is closed or has a listener.
    public func receiveNoWait() async throws(ConveyorError) -> Message? {
        try await receive(deadline: nil, waits: false)
    }

    @inline(__always)
    private func receive(deadline: ContinuousClock.Instant?, waits: Bool) async throws(ConveyorError) -> Message? {
        if isClosed { throw .closed("consumer") }
        if hasListener {
            throw .illegalState("this consumer has a message listener; remove it before calling receive")
        }
        var mayPark = false
        while true {
            if session.connection.isStarted {
                var taken = takeNow(waitIfEmpty: mayPark || !waits, recordingDeliveries: !session.mode.acknowledgesOnDelivery)
                if !taken.needsStore {
                    // The hot path: no store work, no further async frame.
                    if let entry = taken.entry.take() {
                        let (message, unstoredAck) = session.prepareDelivery(entry, from: queue, acknowledgeNow: true)
                        if let unstoredAck { try await session.acknowledge(unstoredAck, from: queue) }
                        return message
                    }
                } else if let entry = try await complete(&taken) {
                    let (message, unstoredAck) = session.prepareDelivery(entry, from: queue, acknowledgeNow: true)
                    if let unstoredAck { try await session.acknowledge(unstoredAck, from: queue) }
                    return message
                }
            }
            if isClosed { return nil }
            if !waits || Task.isCancelled || deadline.map({ $0 <= .now }) ?? false {
                queue.stopWaiting(self)
                return nil
            }
            if !mayPark {
                // Watch the queue for a moment before parking: when messages flow, one arrives within
                // microseconds, and taking it costs far less than a park and a wake-up.
                mayPark = true
                if session.connection.isStarted, await spinForAdditions() { mayPark = false }
                continue
            }
            mayPark = false
            await parker.park(until: deadline)
        }
    }

    /// How long a receive watches its queue before parking.
    private static let spinLimit = Duration.microseconds(50)

    /// Yields for up to ``spinLimit`` while watching for a new message on the queue.
    /// - Returns: Whether one was added.
    private func spinForAdditions() async -> Bool {
        let start = queue.additions
        let limit = ContinuousClock.now + Self.spinLimit
        var round = 0
        while true {
            await Task.yield()
            if queue.additions != start { return true }
            round += 1
            if round & 7 == 0, ContinuousClock.now > limit { return false }
        }
    }

    /// What ``takeNow(waitIfEmpty:)`` found.
    private struct Taken {
        /// The next message, if any.
        var entry: QueueEntry?
        /// Persistent messages just fetched whose delivery counts must reach the store before
        /// delivery: their sequences and the counts to record (only these, not the messages).
        var fetchedPersistent: [(sequence: UInt64, deliveryCount: Int)] = []
        /// Messages removed without delivery (expired, redelivered too often), to dispose of.
        var discarded: [DiscardedEntry] = []

        var needsStore: Bool { !fetchedPersistent.isEmpty || !discarded.isEmpty }
    }

    /// Takes the next message from the prefetch buffer, refilling it from the queue when empty,
    /// without waiting for anything.
    /// - Parameter recordingDeliveries: Whether persistent messages fetched now must have their
    ///   delivery counts written before delivery. Not for a synchronous receive in an auto mode: it
    ///   acknowledges before the application sees the message, so there is no unacknowledged
    ///   delivery for a crash to reveal.
    private func takeNow(waitIfEmpty: Bool, recordingDeliveries: Bool = true) -> Taken {
        state.withLock { state -> Taken in
            var taken = Taken()
            if state.isClosed { return taken }
            var now: Int64?
            func clock() -> Int64 {
                if let now { return now }
                let current = WallClock.nowMillis()
                now = current
                return current
            }
            while let entry = state.buffer.popFirst() {
                guard entry.message.expiration != 0, entry.isExpired(at: clock()) else {
                    taken.entry = entry
                    return taken
                }
                queue.markReturned(CollectionOfOne(entry))
                taken.discarded.append(DiscardedEntry(entry: entry, reason: .expired))
            }
            let discarded = queue.fetch(for: self, limit: prefetch, into: &state.buffer, waitIfEmpty: waitIfEmpty)
            if !discarded.isEmpty { taken.discarded += discarded }
            guard let entry = state.buffer.popFirst() else { return taken }
            taken.entry = entry
            if recordingDeliveries, queue.isDurable {
                taken.fetchedPersistent = Self.deliveriesToRecord(entry, state.buffer)
            }
            return taken
        }
    }

    /// The persistent messages among `first` and `rest` with the delivery counts their coming
    /// delivery gives them, read in place.
    private static func deliveriesToRecord(_ first: QueueEntry, _ rest: Deque<QueueEntry>) -> [(sequence: UInt64, deliveryCount: Int)] {
        var deliveries: [(sequence: UInt64, deliveryCount: Int)] = []
        if first.isPersistent { deliveries.append((first.sequence, first.message.deliveryCount + 1)) }
        for index in rest.indices where rest[index].isPersistent {
            deliveries.append((rest[index].sequence, rest[index].message.deliveryCount + 1))
        }
        return deliveries
    }

    /// Does the store work a take needs: disposes of discarded messages and, before persistent
    /// messages are delivered, writes their delivery counts so that after a crash they come back
    /// flagged redelivered.
    /// - Returns: The message to deliver, if any.
    private func complete(_ taken: inout Taken) async throws(ConveyorError) -> QueueEntry? {
        if !taken.discarded.isEmpty {
            try await session.broker.dispose(taken.discarded, from: queue)
        }
        let entry = taken.entry
        let fetched = taken.fetchedPersistent
        if let key = queue.storeKey, !fetched.isEmpty {
            let batch = StoreBatch(fetched.map { .setDeliveryCount(sequence: $0.sequence, in: key, count: $0.deliveryCount) })
            do {
                try await session.broker.recordDeliveries(batch)
            } catch {
                if let entry { queue.putBack([entry], wereDelivered: false) }
                returnPrefetched()
                throw error
            }
        }
        return entry
    }

    // MARK: Listener

    /// Sets (or, with `nil`, removes) the listener that receives this consumer's messages.
    ///
    /// Listeners of one session run one at a time, in a task on a thread of the session's; consumers
    /// of other sessions run concurrently. In auto-acknowledge modes a message is acknowledged when
    /// the listener returns; if the listener throws, the message is delivered again, flagged
    /// redelivered.
    /// - Parameter listener: The closure called with each message.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the consumer is closed.
    public func setMessageListener(_ listener: Listener?) throws(ConveyorError) {
        try state.withLock { (state) throws(ConveyorError) in
            if state.isClosed { throw .closed("consumer") }
            state.listener = listener
        }
        listening.store(listener != nil, ordering: .releasing)
        if listener != nil {
            session.ensureListenerLoop()
        }
    }

    /// Delivers one message to the listener, if one is ready. Called by the session's listener loop.
    /// - Returns: Whether a message was handled.
    func dispatchToListener() async -> Bool {
        // The whole delivery (take, listener, acknowledgement) is the call that close() and stop() wait for.
        guard let call = session.beginListenerCall(for: self) else { return false }
        defer { session.endListenerCall() }
        guard let listener = state.withLock({ $0.listener }) else { return false }
        let delivered: QueueEntry
        let message: Message
        do {
            var taken = takeNow(waitIfEmpty: true)
            guard let entry = taken.needsStore ? try await complete(&taken) : taken.entry else { return false }
            (message, delivered) = session.prepareListenerDelivery(entry, from: queue)
        } catch {
            session.connection.report(error)
            return true
        }
        do {
            try await ListenerCall.$current.withValue(call) { try await listener(message) }
        } catch {
            session.broker.logger.debug("listener threw; the message will be redelivered", metadata: ["error": "\(error)"])
            session.redeliverAfterListenerFailure(delivered, from: queue)
            return true
        }
        if session.mode.acknowledgesOnDelivery {
            if session.takeListenerRecovery() {
                // The listener called recover(): its message was not acknowledged yet, so it comes again.
                session.redeliverAfterListenerFailure(delivered, from: queue)
                return true
            }
            do {
                try await session.acknowledge(delivered, from: queue)
            } catch {
                session.connection.report(error)
            }
        }
        return true
    }

    // MARK: Stream

    /// The consumer's messages as an `AsyncSequence`; it ends when the consumer closes or the
    /// iterating task is cancelled. Back pressure is natural: a message is taken only when the loop
    /// asks for the next one.
    public var messages: Messages { Messages(consumer: self) }

    /// An `AsyncSequence` of a consumer's messages; see ``MessageConsumer/messages``.
    public struct Messages: AsyncSequence, Sendable {
        /// The element type.
        public typealias Element = Message
        /// The error type.
        public typealias Failure = ConveyorError
        let consumer: MessageConsumer

        /// Creates the iterator.
        public func makeAsyncIterator() -> Iterator { Iterator(consumer: consumer) }

        /// Receives one message per call to `next()`.
        public struct Iterator: AsyncIteratorProtocol {
            let consumer: MessageConsumer

            /// The next message, or `nil` once the consumer is closed or the task cancelled.
            public mutating func next() async throws(ConveyorError) -> Message? {
                if consumer.isClosed { return nil }
                return try await consumer.receive()
            }

            /// The next message; see ``next()``.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws(ConveyorError) -> Message? {
                let consumer = self.consumer
                if consumer.isClosed { return nil }
                return try await consumer.receive()
            }
        }
    }

    // MARK: Closing

    /// Closes the consumer: a waiting `receive` returns `nil`, the listener is not called again and
    /// prefetched messages go back to the queue. Closing twice does nothing more.
    ///
    /// Blocks until a call of its listener in progress has returned, unless called from that
    /// listener. Unacknowledged messages it delivered stay with the session until acknowledge,
    /// commit, recover or rollback, as in JMS.
    public func close() {
        let wasOpen = state.withLock { state in
            defer {
                state.isClosed = true
                state.listener = nil
            }
            return !state.isClosed
        }
        // Before the buffer goes back: the listener in progress may still be taking from it.
        session.waitForListenerCall(of: self)
        guard wasOpen else { return }
        let buffer = state.withLock { state in
            defer { state.buffer = [] }
            return state.buffer
        }
        listening.store(false, ordering: .releasing)
        queue.markReturned(buffer)
        queue.putBack(Array(buffer), wereDelivered: false)
        if let subscription {
            session.broker.consumerClosed(self, on: subscription)
        } else {
            queue.removeConsumer(self)
        }
        session.consumerClosed(self)
        parker.unpark()
    }

    /// Hands the prefetched, undelivered messages back to the queue (before a recover or rollback,
    /// so that redelivered messages come first again).
    func returnPrefetched() {
        let buffer = state.withLock { state in
            defer { state.buffer = [] }
            return state.buffer
        }
        queue.markReturned(buffer)
        queue.putBack(Array(buffer), wereDelivered: false)
    }
}
