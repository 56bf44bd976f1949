import Synchronization

/// Looks at the messages waiting in a queue without consuming them (JMS `QueueBrowser`).
///
/// Each call to ``messages()`` takes a snapshot in delivery order (highest priority first). Messages
/// already taken by consumers (prefetched or in flight) are not shown. On a store that pages
/// (``MemoryWindow``), the messages beyond the in-memory window follow, read from the store.
public final class QueueBrowser: Sendable {
    /// The queue being browsed.
    public let queue: Queue
    /// The browser's selector, if any.
    public let messageSelector: String?
    /// The session that created the browser.
    public let session: Session
    private let messageQueue: MessageQueue
    private let selector: Selector?
    private let closed = Atomic(false)

    init(session: Session, queue: Queue, messageQueue: MessageQueue, selector: Selector?) {
        self.session = session
        self.queue = queue
        self.messageQueue = messageQueue
        self.selector = selector
        self.messageSelector = selector?.expression
    }

    /// The waiting messages that match the selector, in delivery order.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the browser or its session is closed,
    ///   ``ConveyorError/Code/storage`` if the store cannot be read.
    public func messages() throws(ConveyorError) -> [Message] {
        if closed.load(ordering: .acquiring) { throw .closed("queue browser") }
        try session.checkOpen()
        return try messageQueue.browse(selector: selector)
    }

    /// Closes the browser (JMS `QueueBrowser.close`): ``messages()`` throws afterwards. A browser
    /// holds no messages, so nothing else changes; closing twice does nothing. Closing its session
    /// makes it unusable too.
    public func close() {
        closed.store(true, ordering: .releasing)
    }
}
