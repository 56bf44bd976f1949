import Dispatch
import Synchronization

/// A single-threaded context for producing and consuming messages (JMS `Session`).
///
/// The session is the unit of acknowledgement and of transactions: in
/// ``SessionMode/clientAcknowledge`` mode one ``Message/acknowledge()`` acknowledges everything the
/// session has consumed; in ``SessionMode/transacted`` mode ``commit()`` makes the session's sends
/// visible and its receives final, together. Listeners of one session run one at a time, on a
/// thread of the session's own.
///
/// Like a JMS session, use it from one task at a time. It is `Sendable` so you can hand it over, and
/// its state is guarded so misuse cannot corrupt it.
public final class Session: Sendable, MessageAcknowledging {
    /// The acknowledge mode or ``SessionMode/transacted``.
    public let mode: SessionMode
    /// The connection that created the session.
    public let connection: Connection

    var broker: Broker { connection.broker }
    let listenerParker = Parker()

    private let closed = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var unacknowledged: [Delivery] = []
        var pendingSends: [PendingSend] = []
        var consumers: [MessageConsumer] = []
        var listenerTask: Task<Void, Never>?
        /// The listener call in progress, if any: its consumer and its number.
        var listenerCall: (consumer: ObjectIdentifier, number: UInt64)?
        var listenerCallCount: UInt64 = 0
        /// Whether ``Session/recover()`` was called during the listener call in progress, in an auto
        /// mode: its message is then delivered again instead of being acknowledged.
        var recoversListenerMessage = false
        /// Threads blocked in `close()` or `stop()` until the listener call in progress returns.
        var listenerCallWaiters: [DispatchSemaphore] = []
        /// The thread the producers' asynchronous sends and their completion handlers run on,
        /// created with the first such send.
        var completionThread: SessionThread?
    }

    /// Asynchronous sends of this session's producers whose completion handler has not returned.
    let asyncSends = InFlightCount()

    init(connection: Connection, mode: SessionMode, publisher: Publisher) {
        self.connection = connection
        self.mode = mode
        self.publisher = publisher
    }

    /// The connection's identity as a sender, fixed when the session is created.
    let publisher: Publisher

    /// Whether ``close()`` has been called (directly or by closing the connection).
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Whether this session groups work into transactions.
    public var isTransacted: Bool { mode == .transacted }

    func checkOpen() throws(ConveyorError) {
        if isClosed { throw .closed("session") }
    }

    // MARK: Factories

    /// Creates a producer.
    /// - Parameter destination: Where it sends; `nil` for a producer that names the destination on
    ///   each send.
    /// - Returns: A producer with JMS defaults: persistent, priority 4, no expiry, no delay.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the session is closed;
    ///   ``ConveyorError/Code/invalidDestination`` for an invalid or deleted destination.
    public func createProducer(for destination: Destination? = nil) throws(ConveyorError) -> MessageProducer {
        try checkOpen()
        let target = try destination.map { (destination) throws(ConveyorError) in try broker.target(for: destination) }
        return MessageProducer(session: self, destination: destination, target: target)
    }

    /// Creates a consumer of a queue, or of a topic through a new non-durable subscription.
    /// - Parameters:
    ///   - destination: The queue or topic.
    ///   - selector: A JMS message selector; `nil` or empty accepts every message.
    ///   - noLocal: For topics: skip messages published by this connection.
    ///   - options: Further settings, such as an exclusive queue consumer.
    /// - Returns: A consumer; it receives once the connection is started.
    /// - Throws: ``ConveyorError/Code/invalidSelector`` for a malformed selector,
    ///   ``ConveyorError/Code/invalidDestination`` for an invalid destination or another
    ///   connection's temporary destination, ``ConveyorError/Code/illegalState`` if closed.
    public func createConsumer(for destination: Destination, selector: String? = nil, noLocal: Bool = false,
                               options: ConsumerOptions = .init()) throws(ConveyorError) -> MessageConsumer {
        try checkOpen()
        let parsed = try Selector.parse(selector)
        switch destination {
        case .queue(let queue):
            let messageQueue = try broker.consumableQueue(queue, connectionID: connection.id)
            return register(MessageConsumer(
                session: self, destination: destination, queue: messageQueue, selector: parsed, subscription: nil,
                exclusive: options.exclusive))
        case .topic(let topic):
            let subscription = try broker.subscribeNonDurable(request(.nonDurable, topic, name: "", parsed, noLocal))
            return register(MessageConsumer(session: self, destination: destination, queue: subscription.queue, selector: nil, subscription: subscription, exclusive: false))
        }
    }

    /// Creates a consumer on an unshared durable subscription, creating the subscription if needed.
    ///
    /// Messages published while no consumer is open are kept for it. Opening it again with a different
    /// topic, selector or `noLocal` replaces it (its stored messages are discarded, JMS §6.11.1).
    /// - Parameters:
    ///   - topic: The topic.
    ///   - name: The subscription name, scoped by the connection's client ID.
    ///   - selector: A JMS message selector; `nil` or empty accepts every message.
    ///   - noLocal: Skip messages published by connections with this client ID.
    /// - Throws: ``ConveyorError/Code/illegalState`` without a client ID or if the subscription already
    ///   has a consumer; ``ConveyorError/Code/invalidDestination`` for a temporary topic;
    ///   ``ConveyorError/Code/invalidSelector``; ``ConveyorError/Code/storage``.
    public func createDurableConsumer(for topic: Topic, name: String, selector: String? = nil, noLocal: Bool = false) async throws(ConveyorError) -> MessageConsumer {
        try checkOpen()
        guard connection.clientID != nil else {
            throw .illegalState("an unshared durable subscription needs a client ID: create the connection with createConnection(clientID:)")
        }
        try DestinationName.validate(name, what: "subscription name")
        try Self.refuseTemporary(topic)
        let subscription = try await broker.subscribeDurable(request(.durable, topic, name: name, try Selector.parse(selector), noLocal))
        return register(MessageConsumer(session: self, destination: .topic(topic), queue: subscription.queue, selector: nil, subscription: subscription, exclusive: false))
    }

    /// Creates a consumer on a shared non-durable subscription (JMS 2.0): every consumer of the same
    /// name shares its messages, each message going to one of them. It ends with its last consumer.
    /// - Parameters:
    ///   - topic: The topic.
    ///   - name: The subscription name, scoped by the client ID if the connection has one.
    ///   - selector: A JMS message selector; `nil` or empty accepts every message.
    /// - Throws: ``ConveyorError/Code/invalidSelector``; ``ConveyorError/Code/illegalState`` if the name
    ///   is in use with another topic or selector.
    public func createSharedConsumer(for topic: Topic, name: String, selector: String? = nil) throws(ConveyorError) -> MessageConsumer {
        try checkOpen()
        try DestinationName.validate(name, what: "subscription name")
        let subscription = try broker.subscribeNonDurable(request(.sharedNonDurable, topic, name: name, try Selector.parse(selector), false))
        return register(MessageConsumer(session: self, destination: .topic(topic), queue: subscription.queue, selector: nil, subscription: subscription, exclusive: false))
    }

    /// Creates a consumer on a shared durable subscription (JMS 2.0): consumers of the same name
    /// compete for its messages, and it keeps messages while none is open.
    /// - Parameters:
    ///   - topic: The topic.
    ///   - name: The subscription name, scoped by the client ID if the connection has one.
    ///   - selector: A JMS message selector; `nil` or empty accepts every message.
    /// - Throws: ``ConveyorError/Code/invalidSelector``; ``ConveyorError/Code/illegalState`` if an
    ///   unshared durable subscription has that name; ``ConveyorError/Code/invalidDestination`` for a
    ///   temporary topic; ``ConveyorError/Code/storage``.
    public func createSharedDurableConsumer(for topic: Topic, name: String, selector: String? = nil) async throws(ConveyorError) -> MessageConsumer {
        try checkOpen()
        try DestinationName.validate(name, what: "subscription name")
        try Self.refuseTemporary(topic)
        let subscription = try await broker.subscribeDurable(request(.sharedDurable, topic, name: name, try Selector.parse(selector), false))
        return register(MessageConsumer(session: self, destination: .topic(topic), queue: subscription.queue, selector: nil, subscription: subscription, exclusive: false))
    }

    /// Creates a browser that looks at a queue's waiting messages without consuming them.
    /// - Parameters:
    ///   - queue: The queue.
    ///   - selector: A JMS message selector; `nil` or empty shows every message.
    /// - Throws: ``ConveyorError/Code/invalidSelector``; ``ConveyorError/Code/illegalState`` if closed.
    public func createBrowser(for queue: Queue, selector: String? = nil) throws(ConveyorError) -> QueueBrowser {
        try checkOpen()
        let parsed = try Selector.parse(selector)
        let messageQueue = try broker.consumableQueue(queue, connectionID: connection.id)
        return QueueBrowser(session: self, queue: queue, messageQueue: messageQueue, selector: parsed)
    }

    /// Deletes a durable subscription of this connection's client; see ``Connection/unsubscribe(_:)``.
    /// - Parameter name: The subscription name.
    /// - Throws: As ``Connection/unsubscribe(_:)``.
    public func unsubscribe(_ name: String) async throws(ConveyorError) {
        try checkOpen()
        try await connection.unsubscribe(name)
    }

    /// Refuses a durable subscription to a temporary topic: it would outlive its topic, which lives
    /// only as long as its connection (JMS calls it a programming error a provider may detect).
    private static func refuseTemporary(_ topic: Topic) throws(ConveyorError) {
        if topic.isTemporary {
            throw .invalidDestination(
                "\(topic) is a temporary topic, which a durable subscription would outlive; use createConsumer or createSharedConsumer for it")
        }
    }

    private func request(_ kind: Subscription.Kind, _ topic: Topic, name: String, _ selector: Selector?, _ noLocal: Bool) -> SubscriptionRequest {
        SubscriptionRequest(kind: kind, topic: topic, name: name, selector: selector, noLocal: noLocal,
                            connectionID: connection.id, clientID: connection.clientID)
    }

    private func register(_ consumer: MessageConsumer) -> MessageConsumer {
        state.withLock { $0.consumers.append(consumer) }
        return consumer
    }

    // MARK: Transactions and acknowledgement

    /// Commits the transaction: the session's sends become visible and its receives are acknowledged,
    /// all at once (one store transaction). Asynchronous sends still queued are part of it: commit
    /// first waits until their completion handlers have returned (JMS).
    /// - Throws: ``ConveyorError/Code/illegalState`` if the session is not transacted or is closed;
    ///   ``ConveyorError/Code/transactionRolledBack`` if the store failed, in which case the
    ///   transaction was rolled back.
    public func commit() async throws(ConveyorError) {
        try checkOpen()
        guard isTransacted else { throw .illegalState("commit() is only for transacted sessions; this one is \(mode)") }
        await asyncSends.none()
        let (sends, deliveries) = state.withLock { state in
            defer {
                state.pendingSends = []
                state.unacknowledged = []
            }
            return (state.pendingSends, state.unacknowledged)
        }
        do {
            try await broker.commit(sends: sends, acknowledgements: deliveries)
        } catch {
            putBack(deliveries, includingPrefetched: true)
            throw ConveyorError(.transactionRolledBack, "the commit failed and the transaction was rolled back: \(error.message)", underlying: error)
        }
    }

    /// Rolls the transaction back: its sends are discarded and its received messages are delivered
    /// again, flagged redelivered. Asynchronous sends still queued are rolled back too: it first
    /// waits until their completion handlers have returned (JMS).
    /// - Throws: ``ConveyorError/Code/illegalState`` if the session is not transacted or is closed.
    public func rollback() async throws(ConveyorError) {
        try checkOpen()
        guard isTransacted else { throw .illegalState("rollback() is only for transacted sessions; this one is \(mode)") }
        await asyncSends.none()
        let deliveries = state.withLock { state in
            defer {
                state.pendingSends = []
                state.unacknowledged = []
            }
            return state.unacknowledged
        }
        putBack(deliveries, includingPrefetched: true)
    }

    /// Stops and restarts delivery from the oldest unacknowledged message: every message delivered
    /// and not acknowledged is delivered again, flagged redelivered, with its delivery count raised.
    ///
    /// In an auto mode, called from a message listener, the listener's own message is the one not yet
    /// acknowledged: it is delivered again once the listener returns (JMS), instead of being
    /// acknowledged.
    /// - Throws: ``ConveyorError/Code/illegalState`` in a transacted session or if closed.
    public func recover() async throws(ConveyorError) {
        try checkOpen()
        guard !isTransacted else { throw .illegalState("recover() is not allowed in a transacted session; use rollback()") }
        let deliveries = state.withLock { state in
            defer { state.unacknowledged = [] }
            if mode.acknowledgesOnDelivery, state.listenerCall != nil { state.recoversListenerMessage = true }
            return state.unacknowledged
        }
        putBack(deliveries, includingPrefetched: true)
    }

    /// Closes the session: its consumers and producers close, an open transaction is rolled back and
    /// unacknowledged messages go back to their queues.
    ///
    /// Blocks until a message listener in progress has returned (and its message, in an auto mode,
    /// is acknowledged); no listener is called afterwards. Called from a listener of this session, it
    /// does not wait for that listener: the session closes at once, and the listener's message is
    /// still acknowledged when it returns in an auto mode. Closing again does nothing more than that
    /// wait.
    ///
    /// It first waits for the asynchronous sends of its producers (``MessageProducer/send(_:to:options:completion:)``):
    /// they are sent and their completion handlers have returned when it closes (JMS). Called from
    /// such a completion handler (which JMS forbids), it cannot wait for the sends queued behind that
    /// one: they complete with a closed error.
    public func close() {
        if !isOnCompletionThread { asyncSends.waitUntilNone() }
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else {
            // Perhaps closed by its own listener, still running: close() still means "none is running".
            waitForListenerCall()
            return
        }
        listenerParker.unpark()
        let fromOwnListener = !waitForListenerCall()
        let (consumers, deliveries, completionThread) = state.withLock { state in
            defer {
                state.consumers = []
                state.unacknowledged = []
                state.pendingSends = []
                state.listenerTask = nil
                state.completionThread = nil
            }
            return (state.consumers, state.unacknowledged, state.completionThread)
        }
        for consumer in consumers { consumer.close() }
        putBack(deliveries, includingPrefetched: false)
        completionThread?.finish()
        // From its own listener the session stays on the connection's list until the listener
        // returns (the listener loop removes it), so that closing the connection waits for it.
        if !fromOwnListener { connection.sessionClosed(self) }
    }

    /// `Message.acknowledge()` in client-acknowledge mode: acknowledges everything consumed so far.
    func acknowledgeFromMessage() async throws(ConveyorError) {
        try checkOpen()
        guard mode == .clientAcknowledge else { return }
        let deliveries = state.withLock { state in
            defer { state.unacknowledged = [] }
            return state.unacknowledged
        }
        do {
            try await broker.commit(sends: [], acknowledgements: deliveries)
        } catch {
            state.withLock { $0.unacknowledged.insert(contentsOf: deliveries, at: 0) }
            throw error
        }
    }

    /// Returns delivered messages to their queues, flagged redelivered; with `includingPrefetched`,
    /// the consumers' undelivered buffers go back first so that order is kept.
    private func putBack(_ deliveries: [Delivery], includingPrefetched: Bool) {
        if includingPrefetched {
            for consumer in state.withLock({ $0.consumers }) { consumer.returnPrefetched() }
        }
        var byQueue: [ObjectIdentifier: (MessageQueue, [QueueEntry])] = [:]
        for delivery in deliveries {
            var entry = delivery.entry
            entry.message.redelivered = true
            byQueue[ObjectIdentifier(delivery.queue), default: (delivery.queue, [])].1.append(entry)
        }
        for (queue, entries) in byQueue.values { queue.putBack(entries, wereDelivered: true) }
    }

    // MARK: Delivery (called by consumers)

    /// Turns a taken entry into a delivered message: counts the delivery, and acknowledges it at once
    /// (auto modes, `acknowledgeNow`) or remembers it until acknowledge/commit.
    /// - Returns: The message, and the entry still to acknowledge with ``acknowledge(_:from:)`` when
    ///   that needs the store (a persistent message in an auto mode).
    func prepareDelivery(_ taken: consuming QueueEntry, from queue: MessageQueue, acknowledgeNow: Bool) -> (message: Message, unstoredAck: QueueEntry?) {
        var entry = taken
        countDelivery(of: &entry)
        guard mode.acknowledgesOnDelivery else {
            // Client and transacted modes: the entry moves to the unacknowledged list.
            return (recordDelivery(of: entry, from: queue), nil)
        }
        if acknowledgeNow, !queue.isStored(entry) {
            queue.markDeliveredAndAcknowledged(bytes: entry.message.body.byteCount)
            return (entry.intoMessage(), nil)
        }
        return (entry.message, acknowledgeNow ? entry : nil)
    }

    /// Turns a taken entry into a message for a listener: as ``prepareDelivery(_:from:acknowledgeNow:)``
    /// without acknowledging, and also returns the delivered entry, which an auto-acknowledge session
    /// acknowledges (or redelivers) when the listener returns.
    func prepareListenerDelivery(_ taken: QueueEntry, from queue: MessageQueue) -> (message: Message, delivered: QueueEntry) {
        var entry = taken
        countDelivery(of: &entry)
        return (recordDelivery(of: copy entry, from: queue), entry)
    }

    /// One more delivery: the count goes up and, from the second on, the message is flagged redelivered.
    private func countDelivery(of entry: inout QueueEntry) {
        entry.message.deliveryCount += 1
        entry.message.redelivered = entry.message.deliveryCount > 1
    }

    /// Remembers a delivery until acknowledge or commit (client and transacted modes) and returns the
    /// application's copy of the message. The entry is moved into the session's list, not copied.
    private func recordDelivery(of entry: consuming QueueEntry, from queue: MessageQueue) -> Message {
        var message = entry.message
        if !mode.acknowledgesOnDelivery {
            var delivery: Delivery? = Delivery(queue: queue, entry: entry)
            state.withLock { $0.unacknowledged.append(delivery.take()!) }
        }
        if mode == .clientAcknowledge { message.acknowledger = self }
        return message
    }

    /// Acknowledges one message delivered in an auto mode.
    func acknowledge(_ entry: QueueEntry, from queue: MessageQueue) async throws(ConveyorError) {
        if queue.isStored(entry), let key = queue.storeKey {
            do {
                try await broker.commit(StoreBatch([.remove(sequence: entry.sequence, from: key)]))
            } catch {
                queue.putBack([entry], wereDelivered: true)
                throw error
            }
        }
        queue.markAcknowledged(bytes: entry.message.body.byteCount)
    }

    /// Whether ``recover()`` was called during the listener call in progress (auto modes); clears it.
    func takeListenerRecovery() -> Bool {
        state.withLock { state in
            defer { state.recoversListenerMessage = false }
            return state.recoversListenerMessage
        }
    }

    /// Hands a message a listener failed on (or recovered, in an auto mode) back to its queue, so it
    /// is delivered again (after the redelivery delay, or to the dead letter queue once the policy's
    /// maximum is reached).
    func redeliverAfterListenerFailure(_ delivered: QueueEntry, from queue: MessageQueue) {
        guard mode.acknowledgesOnDelivery else { return }
        var entry = delivered
        entry.message.redelivered = true
        queue.putBack([entry], wereDelivered: true)
    }

    // MARK: Sending (called by producers)

    /// Completes a send that needs no store write and no waiting (or holds it for the commit of a
    /// transacted session).
    /// - Returns: `nil` when done; the entry back when the send must go through ``send(_:to:)``.
    func sendWithoutWaiting(_ entry: consuming QueueEntry, to target: SendTarget) throws(ConveyorError) -> QueueEntry? {
        if isTransacted {
            try hold(entry, for: target)
            return nil
        }
        return try broker.sendWithoutWaiting(entry, to: target, from: publisher)
    }

    private func hold(_ entry: consuming QueueEntry, for target: SendTarget) throws(ConveyorError) {
        // Moved, not copied, into the list of pending sends.
        var send: PendingSend? = PendingSend(entry: entry, target: target, publisher: publisher)
        try state.withLock { (state) throws(ConveyorError) in
            if isClosed { throw .closed("session") }
            state.pendingSends.append(send.take()!)
        }
    }

    /// Sends now, or holds the send until commit in a transacted session.
    func send(_ entry: QueueEntry, to target: SendTarget) async throws(ConveyorError) {
        try checkOpen()
        if isTransacted {
            try hold(entry, for: target)
        } else {
            try await broker.send(entry, to: target, from: publisher)
        }
    }

    // MARK: Asynchronous sends

    /// The executor the producers' asynchronous sends run on: one thread per session, so that their
    /// completion handlers run one at a time (JMS) and `close()` can block until they are done
    /// without needing Swift's cooperative pool. `nil` once the session is closed.
    func completionExecutor() -> SessionThread? {
        state.withLock { state in
            if let thread = state.completionThread { return thread }
            guard !isClosed else { return nil }
            let thread = SessionThread()
            state.completionThread = thread
            return thread
        }
    }

    /// Whether the caller is one of this session's asynchronous sends or completion handlers, which
    /// must not block until the others are done.
    var isOnCompletionThread: Bool {
        state.withLock { $0.completionThread }?.isCurrent ?? false
    }

    // MARK: Listeners

    func consumerClosed(_ consumer: MessageConsumer) {
        state.withLock { $0.consumers.removeAll { $0 === consumer } }
    }

    /// The connection started: wake every consumer so waiting receives look again.
    func connectionStarted() {
        for consumer in state.withLock({ $0.consumers }) { consumer.wake() }
        listenerParker.unpark()
    }

    /// Starts the loop that runs this session's listeners, one message at a time, if it is not running.
    ///
    /// The loop runs on a ``SessionThread`` of its own, not on the cooperative pool, so that `close()`
    /// and `stop()` can block (on the pool) until a listener returns without starving it.
    func ensureListenerLoop() {
        state.withLock { state in
            guard state.listenerTask == nil, !isClosed else { return }
            let thread = SessionThread()
            state.listenerTask = Task(executorPreference: thread) { [self] in
                await runListeners()
                thread.finish()
            }
        }
        listenerParker.unpark()
    }

    private func runListeners() async {
        while !isClosed {
            var delivered = false
            if connection.isStarted {
                for consumer in state.withLock({ $0.consumers }) where consumer.hasListener {
                    guard connection.isStarted, !isClosed else { break }
                    if await consumer.dispatchToListener() { delivered = true }
                }
            }
            if !delivered { await listenerParker.park(until: nil) }
        }
        // Closed, perhaps from a listener that has now returned: see close().
        connection.sessionClosed(self)
    }

    /// Marks the start of a delivery to `consumer`'s listener; ``endListenerCall()`` marks its end.
    ///
    /// The check and the mark are one step under the lock, so a `stop()` or `close()` either sees
    /// the call and waits for it, or has already made this refuse.
    /// - Returns: The call, or `nil` if the session is closed or the connection stopped.
    func beginListenerCall(for consumer: MessageConsumer) -> ListenerCall? {
        state.withLock { state in
            guard !isClosed, connection.isStarted else { return nil }
            state.listenerCallCount &+= 1
            state.listenerCall = (ObjectIdentifier(consumer), state.listenerCallCount)
            state.recoversListenerMessage = false
            return ListenerCall(consumer: consumer, number: state.listenerCallCount)
        }
    }

    /// Marks the end of the listener call in progress and wakes whoever waits for it.
    func endListenerCall() {
        let waiters = state.withLock { state in
            state.listenerCall = nil
            defer { state.listenerCallWaiters = [] }
            return state.listenerCallWaiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Whether a `close()` or `stop()` is blocked waiting for the listener call in progress (for
    /// tests and diagnostics).
    var hasListenerCallWaiters: Bool { state.withLock { !$0.listenerCallWaiters.isEmpty } }

    /// Whether `call` is this session's listener call in progress.
    func isInProgress(_ call: ListenerCall) -> Bool {
        call.session === self && state.withLock { $0.listenerCall?.number == call.number }
    }

    /// Blocks the calling thread until no listener call is in progress (of `consumer`, if given),
    /// unless the caller is that call, which would wait for itself.
    ///
    /// Blocking is safe on the cooperative pool: listeners run on the session's own thread.
    /// - Returns: `false` if it did not wait because the caller is the call in progress.
    @discardableResult
    func waitForListenerCall(of consumer: MessageConsumer? = nil) -> Bool {
        let caller = ListenerCall.current.flatMap { $0.session === self ? $0.number : nil }
        let wait = state.withLock { state -> (waiter: DispatchSemaphore?, isCaller: Bool) in
            guard let call = state.listenerCall else { return (nil, false) }
            if let consumer, call.consumer != ObjectIdentifier(consumer) { return (nil, false) }
            if call.number == caller { return (nil, true) }
            let waiter = DispatchSemaphore(value: 0)
            state.listenerCallWaiters.append(waiter)
            return (waiter, false)
        }
        wait.waiter?.wait()
        return !wait.isCaller
    }
}
