import DequeModule
import Synchronization

/// Sends messages to a destination (JMS `MessageProducer`).
///
/// `send` returns the message as sent, with ``Message/messageID``, ``Message/timestamp`` and the other
/// provider-set headers filled in. Outside a transaction a persistent send returns only once the
/// message is in the store; in a transacted session it becomes visible at ``Session/commit()``.
/// Messages of one producer to one destination are delivered in send order within a priority.
public final class MessageProducer: Sendable {
    /// A completion handler for ``send(_:to:options:completion:)``.
    public typealias Completion = @Sendable (Result<Message, ConveyorError>) -> Void

    /// The destination given at creation, or `nil` for a producer that names one on each send.
    public let destination: Destination?
    /// The session the producer belongs to.
    public let session: Session
    private let target: SendTarget?

    private struct PendingAsyncSend {
        var message: Message
        var destination: Destination?
        var options: SendOptions
        var completion: Completion
    }

    private struct State {
        var options = SendOptions()
        /// The last destination given per send, resolved: replies to one `replyTo` after another
        /// skip the broker's registry.
        var lastTarget: (destination: Destination, target: SendTarget)?
        var isClosed = false
        var asyncSends = Deque<PendingAsyncSend>()
        var isDraining = false
    }

    private let state = Mutex(State())
    /// Asynchronous sends whose completion handler has not returned.
    private let asyncSends = InFlightCount()

    init(session: Session, destination: Destination?, target: SendTarget?) {
        self.session = session
        self.destination = destination
        self.target = target
    }

    /// The options used when a send does not give its own: persistent, priority 4, no expiry, no delay.
    public var options: SendOptions {
        get { state.withLock { $0.options } }
        set { state.withLock { $0.options = newValue } }
    }

    /// Whether ``close()`` has been called (directly or by closing the session).
    public var isClosed: Bool { state.withLock { $0.isClosed } || session.isClosed }

    /// Sends a message to the producer's destination.
    /// - Parameters:
    ///   - message: The message; its provider-set headers are overwritten.
    ///   - options: Overrides the producer's ``options`` for this send.
    /// - Returns: The message as sent, headers set.
    /// - Throws: ``ConveyorError/Code/illegalState`` if closed, ``ConveyorError/Code/unsupportedOperation``
    ///   if the producer was created without a destination (use ``send(_:to:options:)``),
    ///   ``ConveyorError/Code/invalidDestination`` if its temporary destination was deleted,
    ///   ``ConveyorError/Code/messageFormat`` for invalid options, ``ConveyorError/Code/storage`` if the
    ///   store failed (nothing was sent).
    @discardableResult
    public func send(_ message: Message, options: SendOptions? = nil) async throws(ConveyorError) -> Message {
        try await send(message, destination: nil, options: options)
    }

    /// Sends a message to the given destination, with a producer created without one (JMS's
    /// anonymous producer).
    /// - Parameters:
    ///   - message: The message; its provider-set headers are overwritten.
    ///   - destination: Where to send it.
    ///   - options: Overrides the producer's ``options`` for this send.
    /// - Returns: The message as sent, headers set.
    /// - Throws: As ``send(_:options:)``; ``ConveyorError/Code/unsupportedOperation`` if the producer
    ///   was created with a destination (JMS forbids naming one per send, even the same).
    @discardableResult
    public func send(_ message: Message, to destination: Destination, options: SendOptions? = nil) async throws(ConveyorError) -> Message {
        try await send(message, destination: destination, options: options)
    }

    /// Sends without waiting (JMS 2.0 asynchronous send with a `CompletionListener`): `completion` is
    /// called once the message is stored and visible, or with the error. Sends of one producer complete
    /// in order, and a later `await send` waits for earlier asynchronous ones.
    ///
    /// The completion handlers of one session run one at a time, on a thread of the session's own.
    /// Closing the producer, its session or its connection, and the session's `commit()` and
    /// `rollback()`, first wait until the sends queued so far are done and their handlers have
    /// returned. A handler must not close its own producer, session or connection (JMS): such a
    /// close does not wait, and the sends queued behind it complete with a closed error.
    /// - Parameters:
    ///   - message: The message.
    ///   - destination: Where to send it; `nil` for the producer's destination.
    ///   - options: Overrides the producer's ``options``.
    ///   - completion: Called with the sent message or the error, on an unspecified task.
    public func send(_ message: Message, to destination: Destination? = nil, options: SendOptions? = nil, completion: @escaping Completion) {
        asyncSends.begin()
        session.asyncSends.begin()
        let startDrain = state.withLock { state -> Bool in
            state.asyncSends.append(PendingAsyncSend(message: message, destination: destination, options: options ?? state.options, completion: completion))
            defer { state.isDraining = true }
            return !state.isDraining
        }
        if startDrain {
            Task(executorPreference: session.completionExecutor()) { [self] in await drainAsyncSends() }
        }
    }

    /// Closes the producer, once its asynchronous sends are done and their completion handlers have
    /// returned (not waiting when called from one of them). Closing twice does nothing.
    public func close() {
        if !session.isOnCompletionThread { asyncSends.waitUntilNone() }
        state.withLock { $0.isClosed = true }
    }

    @inline(__always)
    private func send(_ message: Message, destination: Destination?, options override: SendOptions?) async throws(ConveyorError) -> Message {
        let (options, mustQueue) = try state.withLock { (state) throws(ConveyorError) -> (SendOptions, Bool) in
            if state.isClosed { throw .closed("producer") }
            return (override ?? state.options, state.isDraining)
        }
        if mustQueue {
            let result = await withCheckedContinuation { continuation in
                send(message, to: destination, options: options) { continuation.resume(returning: $0) }
            }
            return try result.get()
        }
        let (entry, target) = try stamp(message, destination: destination, options: options)
        let sent = entry.message
        // Most sends need no store write and no waiting: finish them without another async frame.
        if let remaining = try session.sendWithoutWaiting(entry, to: target) {
            try await session.send(remaining, to: target)
        }
        return sent
    }

    private func drainAsyncSends() async {
        while let next = state.withLock({ state -> PendingAsyncSend? in
            if let next = state.asyncSends.popFirst() { return next }
            state.isDraining = false
            return nil
        }) {
            let result: Result<Message, ConveyorError>
            if state.withLock({ $0.isClosed }) {
                result = .failure(.closed("producer"))
            } else {
                do {
                    result = .success(try await perform(next.message, destination: next.destination, options: next.options))
                } catch {
                    result = .failure(error)
                }
            }
            next.completion(result)
            asyncSends.end()
            session.asyncSends.end()
        }
    }

    /// Stamps the provider headers and hands the message to the session.
    private func perform(_ original: Message, destination override: Destination?, options: SendOptions) async throws(ConveyorError) -> Message {
        let (entry, target) = try stamp(original, destination: override, options: options)
        try await session.send(entry, to: target)
        return entry.message
    }

    /// Sets the provider headers and resolves the destination.
    private func stamp(_ original: Message, destination override: Destination?, options: SendOptions) throws(ConveyorError) -> (QueueEntry, SendTarget) {
        try session.checkOpen()
        try options.validate()
        try original.body.validate()
        let destination: Destination
        let target: SendTarget
        if override != nil, let own = self.destination {
            // JMS `send(Destination, Message)`: not on a producer created with a destination, even
            // naming that same one.
            throw ConveyorError(.unsupportedOperation,
                                "this producer sends to \(own); use send(_:) or create a producer without a destination to name one per send")
        }
        if let override, override != self.destination {
            destination = override
            if let cached = state.withLock({ $0.lastTarget }), cached.destination == override {
                target = cached.target
            } else {
                target = try session.broker.target(for: override)
                // Only queues: a deleted (temporary) queue refuses sends itself, so the cache cannot
                // hide a deletion.
                if case .queue = target { state.withLock { $0.lastTarget = (override, target) } }
            }
        } else if let own = self.destination, let cached = self.target {
            destination = own
            target = cached
        } else {
            // JMS `MessageProducer.send(Message)` on a producer created without a destination.
            throw ConveyorError(.unsupportedOperation, "this producer has no destination; pass one with send(_:to:)")
        }
        if destination.isTemporary { try session.broker.checkNotDeleted(target, destination) }
        var message = original
        let sequence = session.broker.nextSequence()
        let now = WallClock.nowMillis()
        message.messageID = MessageID(origin: session.broker.origin, sequence: sequence)
        message.timestamp = now
        message.destination = destination
        message.deliveryMode = options.deliveryMode
        message.priority = options.priority
        message.expiration = options.timeToLive.map { $0 > .zero ? now + $0.milliseconds : 0 } ?? 0
        message.deliveryTime = now + options.deliveryDelay.milliseconds
        message.redelivered = false
        message.deliveryCount = 0
        message.acknowledger = nil
        return (QueueEntry(sequence: sequence, message: message), target)
    }
}
