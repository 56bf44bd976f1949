/// A store that several processes open at once and use as one broker: the LMDB store opened with
/// `sharing: .processes`.
///
/// With a shared store, the store (not one process's memory) is where every message of a queue or
/// subscription waits, whatever its delivery mode: a process takes messages for its consumers by
/// *claiming* them (``claim(in:limit:accepts:)``), so each message goes to one process at a time.
/// Acknowledging removes the reference and its claim (``StoreOperation/remove(sequence:from:)``);
/// ``release(_:in:)`` hands claimed messages back. When a process dies, the claims it held are
/// released by the survivors within ``handOverInterval``, and the subscriptions it owned (its
/// non-durable ones, see ``SubscriptionKey/processOwned(by:name:)``) are deleted with their messages.
///
/// Processes learn of each other's commits through ``startWatching(_:)``: the store wakes the
/// other sharers whenever a commit adds messages, changes subscriptions or releases claims, so a
/// waiting consumer needs no polling.
///
/// Statistics span the processes too (``shareStatistics(_:)``): each process publishes its
/// counters for the others to read, and the store keeps the cumulative ones when a process closes
/// the store or dies, so that they add up over every process that ever used the store.
public protocol SharedMessageStore: MessageStore {
    /// Whether this store is open for sharing with other processes (an LMDB store can be opened
    /// either way); the broker works in shared mode only when it is.
    var isSharedAcrossProcesses: Bool { get }

    /// This process's identity among the sharers while the store is open (unique among the live
    /// and the dead ones whose state is still being cleaned up).
    var processToken: String { get }

    /// The next sequence number: unique among every process sharing the store, and increasing in the
    /// order of calls, across processes. Valid once the store is open.
    func allocateSequence() -> UInt64

    /// Claims for this process, in ascending sequence order, up to `limit` references of `queue`
    /// that no process has claimed and that `accepts` accepts (the others stay unclaimed and do not
    /// count), and returns them with their messages and delivery counts.
    ///
    /// A claimed reference is invisible to other processes' claims until this process removes it
    /// (an acknowledgement), releases it, or dies. A reference acknowledged by another process is
    /// never returned.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read or written.
    func claim(in queue: StoreQueueKey, limit: Int, accepts: (Message) -> Bool) throws(ConveyorError) -> [RecoveredMessage]

    /// Gives claimed references back, so that any process may claim them again, and wakes the other
    /// processes. Sequences not claimed by this process are ignored.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be written.
    func release(_ sequences: [UInt64], in queue: StoreQueueKey) throws(ConveyorError)

    /// How many references each queue and subscription holds now, in every process (waiting,
    /// claimed and delivered-but-unacknowledged alike), for statistics.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    func storedQueues() throws(ConveyorError) -> [StoreQueueKey: StoredQueueSummary]

    /// The subscription records as they are now (other processes save and delete them).
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    func currentSubscriptions() throws(ConveyorError) -> [SubscriptionRecord]

    /// A number that changes whenever any process saves or deletes a subscription record. Cheap to
    /// read (shared memory): a publisher compares it before routing, so that a subscription created
    /// in another process before the publish started is never missed.
    var subscriptionGeneration: UInt64 { get }

    /// The longest time between a process dying and its claims becoming claimable again by the
    /// others (and its subscriptions being deleted), assuming some other process has the store open.
    var handOverInterval: Duration { get }

    /// Starts calling `onChange` (on a thread of the store's) whenever another process commits
    /// messages or subscription changes, releases claims, or dies and has its claims released.
    /// The broker then lets its waiting consumers claim again. Called once, after ``open()``;
    /// watching stops at ``close()``.
    func startWatching(_ onChange: @escaping @Sendable () -> Void)

    /// Makes this process's counters count for every process sharing the store.
    ///
    /// `counters` returns, for each queue and subscription of this process, what it counted since
    /// the broker opened the store (cumulative counters) and what it holds now (consumers, in
    /// flight). The store calls it on a thread of its own: every few hundred milliseconds, to
    /// publish the counters to the other processes when they changed, and once in ``close()``,
    /// to add the cumulative counters to the totals it keeps (the counters are never added twice,
    /// so `counters` counts from the open, not from the last call). When the process dies instead,
    /// a survivor adds what it last published. Counters of subscriptions deleted meanwhile are not
    /// kept. `counters` must not call the store. Called once, after ``open()`` and before
    /// ``startWatching(_:)``; ``close()`` forgets it.
    func shareStatistics(_ counters: @escaping @Sendable () -> [StoreQueueKey: DestinationCounters])

    /// What every process but this one counted, for each queue and subscription: the totals the
    /// store keeps (processes that closed it or died) plus what the other open processes last
    /// published. The caller adds this process's own counters.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    func countersBeyondThisProcess() throws(ConveyorError) -> [StoreQueueKey: DestinationCounters]
}

extension SubscriptionKey {
    /// The client-identifier prefix of subscriptions owned by one process of a shared store (the
    /// non-durable subscriptions of its consumers). Client identifiers starting with it are refused.
    public static let processPrefix = "$process:"

    /// The key of a subscription owned by the process `token` of a shared store: deleted with its
    /// messages when that process closes the store or dies.
    /// - Parameters:
    ///   - token: The owning process's ``SharedMessageStore/processToken``.
    ///   - name: A name unique within the process.
    /// - Returns: The key.
    public static func processOwned(by token: String, name: String) -> SubscriptionKey {
        SubscriptionKey(clientID: processPrefix + token, name: name)
    }

    /// The owning process's token, if this key names a process-owned subscription.
    public var owningProcess: String? {
        guard let clientID, clientID.hasPrefix(Self.processPrefix) else { return nil }
        return String(clientID.dropFirst(Self.processPrefix.count))
    }
}
