import Dispatch
import Logging

/// How much of a durable queue's backlog a broker keeps in memory when its store can page
/// (``MessageStore/pagesMessages``: LMDB and the file store).
///
/// Persistent messages beyond the window stay only in the store; as consumers drain the window,
/// the broker reads the next page back, in sequence order. A backlog of millions of messages then
/// costs memory for the window alone. Within the window, priorities and selectors apply as usual;
/// a message in the store is considered only once it is read back, so a high-priority message sent
/// while the window is full waits for the messages sent before it, and a consumer whose selector
/// matches nothing in the window waits until others drain it (ActiveMQ's store cursor behaves the
/// same way). The memory store never pages: its messages are in memory anyway.
public struct MemoryWindow: Sendable, Hashable {
    /// The most messages of one queue or subscription held in memory before new ones stay only in
    /// the store (default 10,000).
    public var maximumMessages: Int
    /// The most body bytes of one queue or subscription held in memory before new messages stay
    /// only in the store (default 16 MiB).
    public var maximumBytes: Int
    /// How many messages are read back from the store at a time (default 1,000). A page is read
    /// when the window falls below half its limits.
    public var pageSize: Int

    /// Creates a window.
    /// - Parameters:
    ///   - maximumMessages: Messages per queue held in memory (at least 1).
    ///   - maximumBytes: Body bytes per queue held in memory (at least 1).
    ///   - pageSize: Messages read back from the store at a time (at least 1).
    public init(maximumMessages: Int = 10_000, maximumBytes: Int = 16 << 20, pageSize: Int = 1_000) {
        self.maximumMessages = max(1, maximumMessages)
        self.maximumBytes = max(1, maximumBytes)
        self.pageSize = max(1, pageSize)
    }
}

/// What a ``MessageQueue`` needs to read its own messages back from the store.
struct QueuePager: Sendable {
    let store: any MessageStore
    let key: StoreQueueKey
    let window: MemoryWindow
    let logger: Logger
    /// The page reads running in the background (see ``MessageQueue/fetch(for:limit:into:waitIfEmpty:)``),
    /// one group for the whole broker: ``Broker/close()`` waits for them before closing the store.
    let backgroundReads: DispatchGroup
    /// The store when other processes share it: the queue then holds only messages this process
    /// claimed (see ``SharedMessageStore``).
    var shared: (any SharedMessageStore)? = nil
}

/// The part of a durable queue's backlog that is only in the store, not in memory.
///
/// Invariant while active: every reference the store holds for the queue with a sequence at or
/// below ``loadedThrough`` is in memory, in flight, or in transit (committed, about to be added by
/// the send that stored it); those above it are either in transit or counted here.
struct StoredBacklog {
    /// Whether some of the queue's messages are only in the store.
    var isActive = false
    /// How many messages are only in the store.
    var count = 0
    /// Their body bytes (an estimate after a restart: the store's figure).
    var bytes = 0
    /// See the type's invariant.
    var loadedThrough: UInt64 = 0
    /// Whether a consumer is reading a page from the store right now.
    var isLoading = false
    /// After a failed read, no read is tried before this time (milliseconds since 1970), so that a
    /// failing store is not hammered by every fetch.
    var retryAfter: Int64 = 0
    /// Messages that joined the store-only part while a page was being read: the read may have
    /// missed them although their sequence is below what it returned, so they are checked after it.
    var arrivedWhileLoading: [QueueEntry] = []

    // Shared stores (several processes): every message waits in the store until a process claims it.

    /// Grows whenever the store may hold new claimable messages (a commit here or in another
    /// process, released claims).
    var generation: UInt64 = 1
    /// The generation at which a claim found nothing more: no claim is tried again until it grows,
    /// so a waiting consumer costs nothing between changes.
    var exhaustedAt: UInt64 = 0
}
