/// Request/reply over a temporary queue with correlation IDs (JMS `QueueRequestor`, improved).
///
/// The requestor owns a temporary reply queue on its session's connection. Each ``request(_:timeout:)``
/// sets the request's `replyTo` to that queue, sends it, and waits for the reply whose
/// `correlationID` is the request's message ID; replies to earlier, timed-out requests are discarded.
/// A responder answers with ``reply(to:with:using:)`` or by doing the same by hand.
///
/// One request at a time per requestor, as with JMS's requestors; create one per concurrent caller.
public final class Requestor: Sendable {
    /// Where requests are sent.
    public let destination: Destination
    /// The temporary queue replies come back on.
    public let replyQueue: Queue
    private let producer: MessageProducer
    private let consumer: MessageConsumer

    /// Creates a requestor that sends to `destination`.
    /// - Parameters:
    ///   - session: A non-transacted session whose connection is (or will be) started.
    ///   - destination: The service's queue or topic.
    /// - Throws: ``ConveyorError/Code/illegalState`` for a transacted or closed session (the request
    ///   would never leave before the reply was awaited).
    public init(session: Session, destination: Destination) throws(ConveyorError) {
        if session.isTransacted {
            throw .illegalState("a requestor needs a non-transacted session: a transacted request is only sent at commit")
        }
        self.destination = destination
        self.replyQueue = try session.connection.createTemporaryQueue()
        self.producer = try session.createProducer(for: destination)
        self.consumer = try session.createConsumer(for: .queue(replyQueue))
    }

    /// Sends a request and waits for its reply.
    /// - Parameters:
    ///   - message: The request; its `replyTo` is set to ``replyQueue``.
    ///   - timeout: How long to wait for the reply.
    ///   - options: Send options; non-persistent by default, as replies to a vanished requestor are moot.
    /// - Returns: The reply, or `nil` if none came in time.
    /// - Throws: Errors of the send or the receive.
    public func request(_ message: Message, timeout: Duration, options: SendOptions = .nonPersistent) async throws(ConveyorError) -> Message? {
        var request = message
        request.replyTo = .queue(replyQueue)
        let sent = try await producer.send(request, options: options)
        let correlationID = sent.messageID?.description
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - .now
            guard remaining > .zero, let reply = try await consumer.receive(timeout: remaining) else { return nil }
            if reply.correlationID == correlationID { return reply }
        }
    }

    /// Sends `response` as the reply to `request`: to its `replyTo`, correlated by its message ID.
    /// - Parameters:
    ///   - request: The request received.
    ///   - response: The reply to send.
    ///   - producer: A producer (usually without a destination) of the responder's session.
    /// - Returns: The reply as sent.
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if the request has no `replyTo`; send errors.
    @discardableResult
    public static func reply(to request: Message, with response: Message, using producer: MessageProducer) async throws(ConveyorError) -> Message {
        guard let replyTo = request.replyTo else {
            throw .invalidDestination("the request has no replyTo destination; the requester expects no reply")
        }
        var reply = response
        reply.correlationID = request.messageID?.description
        return try await producer.send(reply, to: replyTo, options: SendOptions(deliveryMode: request.deliveryMode))
    }

    /// Closes the requestor's producer and consumer and deletes its reply queue.
    public func close() {
        producer.close()
        consumer.close()
        try? consumer.session.connection.deleteTemporary(.queue(replyQueue))
    }
}
