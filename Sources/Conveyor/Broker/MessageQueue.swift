import DequeModule
import Dispatch
import Logging
import HeapModule
import Synchronization

/// The dispatch unit of the broker: the messages held for one queue or one subscription, and the
/// consumers waiting for them.
///
/// A queue has one `MessageQueue`; a topic has one per subscription. Consumers pull batches from it
/// into their prefetch buffers under one short lock; a producer appending to it wakes a waiting
/// consumer only when one is parked, so a busy consumer costs the producer nothing but the append.
///
/// Messages not yet deliverable (delivery delay, redelivery delay) wait in a schedule ordered by
/// time and move to the pending lanes when due, so they never hold up the messages behind them.
final class MessageQueue: Sendable {
    /// The name shown in statistics (`queue://orders`, `topic://prices#billing:audit`).
    let displayName: String
    /// The queue or topic name, used to name its dead letter queue.
    let baseName: String
    /// Where the store keeps this queue's persistent messages; `nil` for non-durable subscriptions,
    /// whose messages are never stored.
    let storeKey: StoreQueueKey?
    /// ``storeKey`` as a list of targets for ``StoredMessage``, built once so that storing a message
    /// for this queue alone allocates no array.
    let storeKeys: [StoreQueueKey]
    /// Redelivery, dead letter, expiry and backlog settings.
    let policy: DestinationPolicy
    /// Reads messages back from the store when only a window of the backlog is kept in memory;
    /// `nil` when every message stays in memory (memory store, non-durable queues).
    let pager: QueuePager?
    /// The store when other processes share it (then only claimed messages are held here).
    let shared: (any SharedMessageStore)?

    private struct Scheduled: Comparable {
        var entry: QueueEntry
        static func < (a: Scheduled, b: Scheduled) -> Bool {
            (a.entry.notBefore, a.entry.sequence) < (b.entry.notBefore, b.entry.sequence)
        }
        static func == (a: Scheduled, b: Scheduled) -> Bool { a.entry.sequence == b.entry.sequence }
    }

    private struct State {
        var pending = PendingMessages()
        var scheduled = Heap<Scheduled>()
        var scheduledBytes = 0
        var timerDue: Int64?
        /// When the expiry sweep runs next, if a waiting message has a time-to-live.
        var expiryDue: Int64?
        /// Consumers that found nothing and wait to be woken, oldest first.
        var hungry: [MessageConsumer] = []
        var consumerCount = 0
        /// The open consumers, for a shared store: only messages one of them accepts are claimed.
        var consumers: [MessageConsumer] = []
        /// Exclusive consumers in arrival order; the first one gets every message.
        var exclusive: [ObjectIdentifier] = []
        /// Which consumer owns each message group.
        var groupOwners: [String: ObjectIdentifier] = [:]
        /// Producers blocked by flow control.
        var capacityWaiters: [Parker] = []
        /// Room promised to sends that passed the capacity check and have not been added yet.
        var reservedCount = 0
        var reservedBytes = 0
        var duplicates: DuplicateWindow
        var isDeleted = false
        /// Messages only in the store (see ``MemoryWindow``).
        var stored = StoredBacklog()
        /// Sequences being stored for this queue by sends that will add them once committed.
        var inTransit: Set<UInt64> = []
        /// The highest sequence of a stored message that joined the in-memory window.
        var highestAdmitted: UInt64 = 0

        var residentCount: Int { pending.count + scheduled.count }
        var residentBytes: Int { pending.byteCount + scheduledBytes }
        var waitingCount: Int { residentCount + reservedCount + stored.count }
        var waitingBytes: Int { residentBytes + reservedBytes + stored.bytes }
    }

    private let state: Mutex<State>
    /// Disposes of messages the expiry sweep removed (set by the broker).
    private let expiryHandler = Mutex<(@Sendable ([DiscardedEntry]) async -> Void)?>(nil)
    /// Written by producers.
    private let producerCounters = ProducerCounters()
    /// Written by consumers; a separate object so the two sides do not share a cache line.
    private let counters = ConsumerCounters()

    init(displayName: String, baseName: String, storeKey: StoreQueueKey?, policy: DestinationPolicy, duplicateWindow: Int,
         pager: QueuePager? = nil) {
        self.displayName = displayName
        self.baseName = baseName
        self.storeKey = storeKey
        self.storeKeys = storeKey.map { [$0] } ?? []
        self.policy = policy
        self.pager = pager
        self.shared = pager?.shared
        self.isDurable = storeKey != nil
        self.isShared = pager?.shared != nil
        self.isLimited = policy.limits.isLimited
        self.state = Mutex(State(duplicates: DuplicateWindow(capacity: duplicateWindow)))
    }

    /// Whether messages of this queue are written to the store when persistent (it has a
    /// ``storeKey``). Stored, like ``isShared``, because the send and delivery paths ask for every
    /// message, and testing the optionals copies them.
    let isDurable: Bool
    /// Whether other processes share the store (``shared`` is set).
    let isShared: Bool

    /// Whether `entry` is (or goes) in the store: persistent messages of durable queues, and with a
    /// shared store every message of a durable queue (other processes read it from there).
    @inline(__always)
    func isStored(_ entry: QueueEntry) -> Bool {
        isDurable && (entry.isPersistent || isShared)
    }
    /// Whether the queue has backlog limits (then sends may wait or fail).
    let isLimited: Bool

    // MARK: Producing

    /// Appends messages and wakes consumers that can take them. Under the ``OverflowPolicy/dropOldest``
    /// policy, returns the messages dropped to make room (the caller removes them from the store).
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if the queue was deleted.
    /// - Parameter reserved: Whether ``waitForCapacity(count:bytes:disposingExpired:)`` reserved room
    ///   for these messages (the reservation is used up).
    @discardableResult
    func enqueue(_ entries: some Collection<QueueEntry>, now: Int64 = WallClock.nowMillis(), reserved: Bool = false) throws(ConveyorError) -> [QueueEntry] {
        let (toWake, dropped) = try state.withLock { (state) throws(ConveyorError) -> ([MessageConsumer], [QueueEntry]) in
            if reserved {
                state.reservedCount = max(0, state.reservedCount - entries.count)
                state.reservedBytes = max(0, state.reservedBytes - entries.reduce(0) { $0 + $1.message.body.byteCount })
            }
            if state.isDeleted {
                throw .invalidDestination("\(displayName) has been deleted; messages can no longer be sent to it")
            }
            if isShared {
                // Committed to the shared store: consumers here claim them from there like any
                // other process's, so that each goes to one process only.
                state.stored.generation &+= 1
                defer { state.hungry = [] }
                return (state.hungry, [])
            }
            var becameDue = false
            for entry in entries {
                if pager != nil, staysInStoreOnly(entry, in: &state) {
                    // A waiting consumer must hear of it: it reads the store when the window is empty.
                    becameDue = true
                    continue
                }
                place(entry, in: &state, now: now, becameDue: &becameDue)
            }
            let dropped = dropForRoom(in: &state)
            return (becameDue ? Self.takeWakeable(from: &state, for: entries) : [], dropped)
        }
        producerCounters.enqueued.add(entries.count, ordering: .releasing)
        if !dropped.isEmpty { producerCounters.dropped.add(dropped.count, ordering: .relaxed) }
        for consumer in toWake { consumer.wake() }
        return dropped
    }

    /// Appends one message; see ``enqueue(_:now:)``. The hot path of every send: the entry is moved
    /// into the queue, and a parked consumer is woken only if there is one.
    @discardableResult
    func enqueue(_ entry: consuming QueueEntry, now: Int64 = WallClock.nowMillis(), reserved: Bool = false) throws(ConveyorError) -> [QueueEntry] {
        guard entry.notBefore <= now, !isLimited, entry.message.expiration == 0, pager == nil || !entry.isPersistent,
              !isShared else {
            return try enqueue(CollectionOfOne(entry), now: now, reserved: reserved)
        }
        var moving: QueueEntry? = consume entry
        let toWake = try state.withLock { (state) throws(ConveyorError) -> MessageConsumer? in
            if state.isDeleted {
                throw .invalidDestination("\(displayName) has been deleted; messages can no longer be sent to it")
            }
            guard !state.hungry.isEmpty, let entry = moving else {
                state.pending.append(moving.take()!)
                return nil
            }
            let wake = Self.takeWakeable(from: &state, for: CollectionOfOne(entry)).first
            state.pending.append(moving.take()!)
            return wake
        }
        producerCounters.enqueued.add(1, ordering: .releasing)
        toWake?.wake()
        return []
    }

    /// Puts a message into the pending lanes, or the schedule if it is not due yet.
    private func place(_ entry: QueueEntry, in state: inout State, now: Int64, becameDue: inout Bool) {
        if entry.message.expiration != 0 { armExpirySweep(for: entry.message.expiration, in: &state) }
        if entry.notBefore > now {
            schedule(entry, in: &state)
        } else {
            state.pending.append(entry)
            becameDue = true
        }
    }

    // MARK: Paging

    /// Notes that sends are storing `sequences` for this queue and will add them once committed,
    /// so that a page read meanwhile does not add them a second time. Call before the store commit.
    func beginTransit(_ sequences: some Sequence<UInt64>) {
        guard pager != nil, !isShared else { return }
        state.withLock { state in
            for sequence in sequences { state.inTransit.insert(sequence) }
        }
    }

    /// Forgets sends registered with ``beginTransit(_:)`` whose commit failed.
    func cancelTransit(_ sequences: some Sequence<UInt64>) {
        guard pager != nil, !isShared else { return }
        state.withLock { state in
            for sequence in sequences { state.inTransit.remove(sequence) }
        }
    }

    /// Starts the queue with messages that are only in the store (after a restart).
    func restoreStoredBacklog(_ summary: StoredQueueSummary) {
        guard pager != nil, !isShared, summary.count > 0 else { return }
        if state.withLock({ $0.duplicates.capacity > 0 }) { needsDuplicateScan.store(true, ordering: .releasing) }
        state.withLock { state in
            state.stored.isActive = true
            state.stored.count += summary.count
            state.stored.bytes += summary.bytes
        }
    }

    /// Whether some messages are only in the store.
    var hasStoredBacklog: Bool { state.withLock { $0.stored.isActive } }

    /// How many waiting messages are in memory (the rest of the depth is only in the store).
    var residentCount: Int { state.withLock { $0.residentCount } }

    /// Decides whether a stored message joins the in-memory window or stays only in the store
    /// (it is then dropped here and read back later). Non-persistent messages always join.
    private func staysInStoreOnly(_ entry: QueueEntry, in state: inout State) -> Bool {
        guard let pager, entry.isPersistent else { return false }
        state.inTransit.remove(entry.sequence)
        if state.stored.isActive {
            guard entry.sequence > state.stored.loadedThrough else {
                state.highestAdmitted = max(state.highestAdmitted, entry.sequence)
                return false
            }
            if state.stored.isLoading { state.stored.arrivedWhileLoading.append(entry) }
        } else {
            let window = pager.window
            let isFull = state.residentCount >= window.maximumMessages || state.residentBytes >= window.maximumBytes
            // A message older than one already in the window joins it, so that every message the
            // store holds above `loadedThrough` is one the window has never had.
            guard isFull, entry.sequence > state.highestAdmitted else {
                state.highestAdmitted = max(state.highestAdmitted, entry.sequence)
                return false
            }
            state.stored.isActive = true
            state.stored.loadedThrough = state.highestAdmitted
        }
        state.stored.count += 1
        state.stored.bytes += entry.message.body.byteCount
        return true
    }

    /// Whether the window has drained enough that the next page should be read; if so, claims
    /// the read (only one consumer reads at a time) and returns where it starts.
    private func claimPageRead(in state: inout State) -> UInt64? {
        guard let pager, state.stored.isActive, !state.stored.isLoading,
              state.residentCount < (pager.window.maximumMessages + 1) / 2,
              state.residentBytes < (pager.window.maximumBytes + 1) / 2,
              state.stored.retryAfter == 0 || WallClock.nowMillis() >= state.stored.retryAfter
        else { return nil }
        state.stored.isLoading = true
        return state.stored.loadedThrough
    }

    /// Reads the next page of the store-only backlog into the window (the caller claimed the read
    /// with ``claimPageRead(in:)``). Blocks for the store read.
    /// - Returns: Whether the store could be read (a failure is logged).
    @discardableResult
    private func readPage(after sequence: UInt64) -> Bool {
        guard let pager else { return false }
        let limit = pager.window.pageSize
        let page: [RecoveredMessage]
        do {
            page = try pager.store.messages(in: pager.key, after: sequence, limit: limit)
        } catch {
            state.withLock { state in
                state.stored.isLoading = false
                state.stored.retryAfter = WallClock.nowMillis() + 1_000
                // What arrived meanwhile is in the store and counted: a later read brings it.
                state.stored.arrivedWhileLoading = []
            }
            pager.logger.error("cannot read \(displayName)'s messages back from the store: \(error)")
            // Consumers left waiting try again once the pause is over.
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(1_001))
                wakeWaitingConsumers()
            }
            return false
        }
        let now = WallClock.nowMillis()
        let toWake = state.withLock { state -> [MessageConsumer] in
            var becameDue = false
            var last = sequence
            var read = Set<UInt64>()
            let arrived = state.stored.arrivedWhileLoading
            state.stored.arrivedWhileLoading = []
            state.stored.isLoading = false
            state.stored.retryAfter = 0
            for item in page {
                last = item.sequence
                if !arrived.isEmpty { read.insert(item.sequence) }
                // Committed but not yet added: its send adds it.
                if state.inTransit.contains(item.sequence) { continue }
                var message = item.message
                message.deliveryCount = item.deliveryCount
                message.redelivered = item.deliveryCount > 0
                if let id = message.duplicateID { _ = state.duplicates.insert(id) }
                state.stored.count -= 1
                state.stored.bytes -= message.body.byteCount
                place(QueueEntry(sequence: item.sequence, message: message), in: &state, now: now, becameDue: &becameDue)
            }
            let exhausted = page.count < limit
            if !exhausted { state.stored.loadedThrough = max(state.stored.loadedThrough, last) }
            for entry in arrived where !read.contains(entry.sequence) && (exhausted || entry.sequence <= last) {
                state.stored.count -= 1
                state.stored.bytes -= entry.message.body.byteCount
                place(entry, in: &state, now: now, becameDue: &becameDue)
            }
            state.highestAdmitted = max(state.highestAdmitted, last, arrived.map(\.sequence).max() ?? 0)
            if exhausted {
                state.stored = StoredBacklog()
            } else {
                // The store's byte figure after a restart is an estimate; never show a negative one.
                state.stored.count = max(0, state.stored.count)
                state.stored.bytes = max(0, state.stored.bytes)
            }
            guard becameDue, !state.hungry.isEmpty else { return [] }
            defer { state.hungry = [] }
            return state.hungry
        }
        for consumer in toWake { consumer.wake() }
        return true
    }

    private func wakeWaitingConsumers() {
        let toWake = state.withLock { state in
            defer { state.hungry = [] }
            return state.hungry
        }
        for consumer in toWake { consumer.wake() }
    }

    // MARK: Shared store

    /// Whether a consumer should claim messages from the shared store now: nothing is waiting here,
    /// no claim is running, and the store may have changed since the last claim found nothing. If
    /// so, takes the claim and returns the generation it starts at.
    private func claimSharedRead(in state: inout State) -> UInt64? {
        guard !state.stored.isLoading, state.pending.isEmpty, state.stored.generation != state.stored.exhaustedAt,
              state.stored.retryAfter == 0 || WallClock.nowMillis() >= state.stored.retryAfter
        else { return nil }
        state.stored.isLoading = true
        return state.stored.generation
    }

    /// Claims up to `limit` messages that a consumer here accepts from the shared store and adds them
    /// (the caller took the claim with ``claimSharedRead(in:)``). Blocks for the store.
    /// - Returns: How many messages were claimed (0 also when the store failed; that is logged).
    @discardableResult
    private func claimFromSharedStore(_ shared: any SharedMessageStore, generation: UInt64, limit: Int,
                                      acceptingAll: Bool = false) -> Int {
        guard let pager else { return 0 }
        let limit = max(1, min(limit, pager.window.pageSize))
        let consumers = state.withLock { $0.consumers }
        let page: [RecoveredMessage]
        do {
            page = try shared.claim(in: pager.key, limit: limit) { message in
                acceptingAll || consumers.contains { $0.accepts(message) }
            }
        } catch {
            state.withLock { state in
                state.stored.isLoading = false
                state.stored.retryAfter = WallClock.nowMillis() + 1_000
            }
            pager.logger.error("cannot claim \(displayName)'s messages from the shared store: \(error)")
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(1_001))
                wakeWaitingConsumers()
            }
            return 0
        }
        let now = WallClock.nowMillis()
        let (toWake, unwanted) = state.withLock { state -> ([MessageConsumer], [UInt64]) in
            state.stored.isLoading = false
            state.stored.retryAfter = 0
            if page.count < limit, state.stored.generation == generation { state.stored.exhaustedAt = generation }
            // Deleted meanwhile: the store dropped the references and their claims with it.
            if state.isDeleted { return ([], []) }
            var becameDue = false
            for item in page {
                var message = item.message
                message.deliveryCount = item.deliveryCount
                message.redelivered = item.deliveryCount > 0
                place(QueueEntry(sequence: item.sequence, message: message), in: &state, now: now, becameDue: &becameDue)
            }
            // The last consumer left while the claim ran: let other processes have them.
            let unwanted = acceptingAll ? [] : releasableIfUnconsumed(in: &state)
            guard becameDue || state.stored.generation != generation, !state.hungry.isEmpty else { return ([], unwanted) }
            defer { state.hungry = [] }
            return (state.hungry, unwanted)
        }
        release(unwanted)
        for consumer in toWake { consumer.wake() }
        return page.count
    }

    /// With no consumer left, removes every claimed message held here and returns their sequences
    /// for ``release(_:)``: a process without consumers must not keep messages from the others.
    private func releasableIfUnconsumed(in state: inout State) -> [UInt64] {
        guard isShared, state.consumerCount == 0 else { return [] }
        var sequences = state.pending.removeAll { _ in true }.map(\.sequence)
        sequences += state.scheduled.unordered.map(\.entry.sequence)
        state.scheduled = Heap()
        state.scheduledBytes = 0
        // Whatever the store holds is claimable again once released.
        state.stored.generation &+= 1
        return sequences
    }

    /// Hands claimed messages back to the shared store (logged if the store fails: they come back
    /// to the others when this process closes the store or dies).
    private func release(_ sequences: [UInt64]) {
        guard let shared, let key = storeKey, !sequences.isEmpty else { return }
        do {
            try shared.release(sequences, in: key)
        } catch {
            pager?.logger.error("cannot hand \(sequences.count) messages of \(displayName) back to the shared store: \(error)")
        }
    }

    /// Notes that the shared store may hold new messages for this queue (a commit here or in another
    /// process, or claims released) and wakes the consumers waiting for them.
    func sharedStoreChanged() {
        guard isShared else { return }
        let toWake = state.withLock { state in
            state.stored.generation &+= 1
            defer { state.hungry = [] }
            return state.hungry
        }
        for consumer in toWake { consumer.wake() }
    }

    /// Reads the next page of store-only messages into the window whatever its fill (for purge).
    /// - Returns: Whether a page was read (`false` when there is none, or the store failed).
    func readNextStoredPage() -> Bool {
        if let shared {
            let generation = state.withLock { state -> UInt64? in
                guard !state.stored.isLoading else { return nil }
                state.stored.isLoading = true
                return state.stored.generation
            }
            guard let generation else { return false }
            return claimFromSharedStore(shared, generation: generation, limit: .max, acceptingAll: true) > 0
        }
        let start = state.withLock { state -> UInt64? in
            guard state.stored.isActive, !state.stored.isLoading else { return nil }
            state.stored.isLoading = true
            return state.stored.loadedThrough
        }
        guard let start else { return false }
        return readPage(after: start)
    }

    /// Records a duplicate-detection ID.
    /// - Returns: `false` if this queue has already seen it.
    func admitDuplicateID(_ id: String) -> Bool {
        if needsDuplicateScan.load(ordering: .acquiring) { scanStoredDuplicateIDs() }
        return state.withLock { $0.duplicates.insert(id) }
    }

    /// Whether the IDs of messages recovered from the store still have to be read into the
    /// duplicate window (done by the first send that carries an ID, not at open: most applications
    /// never use IDs, and reading every stored body would make opening a large store slow).
    private let needsDuplicateScan = Atomic<Bool>(false)

    /// Reads the duplicate-detection IDs of every message the store holds for this queue.
    private func scanStoredDuplicateIDs() {
        guard let pager, needsDuplicateScan.exchange(false, ordering: .acquiringAndReleasing) else { return }
        var after: UInt64 = 0
        do {
            while true {
                let page = try pager.store.messages(in: pager.key, after: after, limit: pager.window.pageSize)
                let ids = page.compactMap(\.message.duplicateID)
                if !ids.isEmpty { state.withLock { state in for id in ids { _ = state.duplicates.insert(id) } } }
                guard page.count == pager.window.pageSize, let last = page.last else { return }
                after = last.sequence
            }
        } catch {
            pager.logger.error("cannot read \(displayName)'s stored duplicate-detection IDs: \(error)")
        }
    }

    /// Forgets a duplicate-detection ID whose send failed, so that a retry is accepted.
    func forgetDuplicateID(_ id: String) {
        state.withLock { $0.duplicates.remove(id) }
    }

    /// Waits until the queue has room for `count` more messages of `bytes` body bytes, as its
    /// overflow policy says, and reserves that room for the caller's ``enqueue(_:now:reserved:)``
    /// (or ``releaseReservation(count:bytes:)`` if the send fails). Expired messages are removed
    /// first rather than counted against the limit.
    /// - Parameter disposingExpired: Disposes of expired messages removed to make room.
    /// - Throws: ``ConveyorError/Code/resourceAllocation`` when the queue is full and the policy
    ///   rejects, or when a blocked send times out.
    /// - Returns: Whether room was reserved (not under the drop-oldest policy, which makes room
    ///   when the message is added).
    func waitForCapacity(count: Int, bytes: Int, disposingExpired: ([DiscardedEntry]) async throws(ConveyorError) -> Void) async throws(ConveyorError) -> Bool {
        guard isLimited else { return false }
        let limits = policy.limits
        let deadline: ContinuousClock.Instant?
        switch limits.overflow {
        case .dropOldest: return false
        case .reject: deadline = nil
        case .block(let timeout): deadline = .now + timeout
        }
        let parker = Parker()
        while true {
            let (full, expired) = state.withLock { state -> (Bool, [DiscardedEntry]) in
                var full = isFull(adding: count, bytes: bytes, state: state)
                var expired: [DiscardedEntry] = []
                if full {
                    let now = WallClock.nowMillis()
                    expired = state.pending.removeAll { $0.isExpired(at: now) }.map { DiscardedEntry(entry: $0, reason: .expired) }
                    full = isFull(adding: count, bytes: bytes, state: state)
                }
                if full {
                    if deadline != nil { state.capacityWaiters.append(parker) }
                } else if case .dropOldest = limits.overflow {
                } else {
                    state.reservedCount += count
                    state.reservedBytes += bytes
                }
                return (full, expired)
            }
            if !expired.isEmpty { try await disposingExpired(expired) }
            guard full else { return true }
            guard let deadline, deadline > .now else {
                throw ConveyorError(.resourceAllocation, fullMessage(waited: deadline != nil))
            }
            await parker.park(until: deadline)
            if Task.isCancelled { throw ConveyorError(.resourceAllocation, fullMessage(waited: true)) }
        }
    }

    /// Gives back room reserved by ``waitForCapacity(count:bytes:disposingExpired:)`` for a send that failed.
    func releaseReservation(count: Int, bytes: Int) {
        guard isLimited else { return }
        state.withLock { state in
            state.reservedCount = max(0, state.reservedCount - count)
            state.reservedBytes = max(0, state.reservedBytes - bytes)
        }
        releaseCapacityWaiters()
    }

    private func fullMessage(waited: Bool) -> String {
        let limits = policy.limits
        let bounds = [limits.maximumMessages.map { "\($0) messages" }, limits.maximumBytes.map { "\($0) bytes" }]
            .compactMap { $0 }.joined(separator: " / ")
        return "\(displayName) is full (limit \(bounds))\(waited ? " and no room was made in time" : ""); consume faster, raise the limit or choose another overflow policy"
    }

    private func isFull(adding count: Int, bytes: Int, state: State) -> Bool {
        let limits = policy.limits
        let inFlight = counters.inFlight.load(ordering: .relaxed)
        if let maximum = limits.maximumMessages, state.waitingCount + inFlight + count > maximum { return true }
        let inFlightBytes = counters.inFlightBytes.load(ordering: .relaxed)
        if let maximum = limits.maximumBytes, state.waitingBytes + inFlightBytes + bytes > maximum, state.waitingCount + inFlight > 0 {
            return true
        }
        return false
    }

    /// Under the drop-oldest policy, removes waiting messages until the queue is within its limits.
    private func dropForRoom(in state: inout State) -> [QueueEntry] {
        guard isLimited, case .dropOldest = policy.limits.overflow else { return [] }
        var dropped: [QueueEntry] = []
        while isFull(adding: 0, bytes: 0, state: state), let oldest = state.pending.dropOldest() {
            dropped.append(oldest)
        }
        return dropped
    }

    /// Puts delivered or prefetched messages back (rollback, recover, a closing consumer).
    /// Delivered messages wait out the redelivery delay first. Messages of a deleted queue are dropped.
    func putBack(_ entries: [QueueEntry], wereDelivered: Bool) {
        guard !entries.isEmpty else { return }
        let now = WallClock.nowMillis()
        let (toWake, unwanted) = state.withLock { state -> ([MessageConsumer], [UInt64]) in
            guard !state.isDeleted else { return ([], []) }
            if isShared, state.consumerCount == 0 {
                // No consumer here: the messages go back to the store for any process.
                state.stored.generation &+= 1
                return ([], entries.map(\.sequence))
            }
            var becameDue = false
            for var entry in entries {
                if wereDelivered {
                    let delay = policy.redelivery.delay(beforeRedelivery: entry.message.deliveryCount)
                    if delay > .zero { entry.notBefore = now + delay.milliseconds }
                }
                if entry.notBefore > now {
                    schedule(entry, in: &state)
                } else {
                    state.pending.putBack(entry)
                    becameDue = true
                }
            }
            return (becameDue ? Self.takeWakeable(from: &state, for: entries) : [], [])
        }
        release(unwanted)
        if wereDelivered {
            counters.inFlight.subtract(entries.count, ordering: .relaxed)
            counters.inFlightBytes.subtract(entries.reduce(0) { $0 + $1.message.body.byteCount }, ordering: .relaxed)
        }
        for consumer in toWake { consumer.wake() }
    }

    /// Picks the parked consumers to wake for new messages: for each message, the longest-waiting
    /// consumer whose selector accepts it.
    private static func takeWakeable(from state: inout State, for entries: some Collection<QueueEntry>) -> [MessageConsumer] {
        guard !state.hungry.isEmpty else { return [] }
        if !state.exclusive.isEmpty {
            defer { state.hungry = [] }
            return state.hungry
        }
        var toWake: [MessageConsumer] = []
        for entry in entries {
            let index: Int?
            if let group = entry.groupID, let owner = state.groupOwners[group] {
                // Only the group's owner may take it.
                index = state.hungry.firstIndex { ObjectIdentifier($0) == owner }
            } else {
                index = state.hungry.firstIndex { $0.accepts(entry.message) }
            }
            guard let index else { continue }
            toWake.append(state.hungry.remove(at: index))
            if state.hungry.isEmpty { break }
        }
        return toWake
    }

    // MARK: Expiry sweep

    /// Sets what the broker does with messages the expiry sweep removes.
    func setExpiryHandler(_ handler: @escaping @Sendable ([DiscardedEntry]) async -> Void) {
        expiryHandler.withLock { $0 = handler }
    }

    /// Drops the expiry handler (and the broker it holds) when the broker closes.
    func clearExpiryHandler() {
        expiryHandler.withLock { $0 = nil }
    }

    /// Makes sure a sweep runs at `expiration`, so that expired messages leave the queue (and are
    /// counted) even when nobody consumes it.
    private func armExpirySweep(for expiration: Int64, in state: inout State) {
        if let current = state.expiryDue, current <= expiration { return }
        state.expiryDue = expiration
        let delay = Duration.milliseconds(max(0, expiration - WallClock.nowMillis()) + 1)
        Task { [self] in
            try? await Task.sleep(for: delay)
            await sweepExpired()
        }
    }

    private func sweepExpired() async {
        let now = WallClock.nowMillis()
        let expired = state.withLock { state -> [DiscardedEntry] in
            state.expiryDue = nil
            let removed = state.pending.removeAll { $0.isExpired(at: now) }
            let next = state.pending.snapshot().lazy.map(\.message.expiration).filter { $0 != 0 }.min()
            if let next { armExpirySweep(for: next, in: &state) }
            return removed.map { DiscardedEntry(entry: $0, reason: .expired) }
        }
        guard !expired.isEmpty, let handler = expiryHandler.withLock({ $0 }) else { return }
        await handler(expired)
        if isLimited { releaseCapacityWaiters() }
    }

    // MARK: Scheduling

    private func schedule(_ entry: QueueEntry, in state: inout State) {
        state.scheduled.insert(Scheduled(entry: entry))
        state.scheduledBytes += entry.message.body.byteCount
        armTimer(for: entry.notBefore, in: &state)
    }

    private func armTimer(for due: Int64, in state: inout State) {
        if let current = state.timerDue, current <= due { return }
        state.timerDue = due
        let delay = Duration.milliseconds(max(0, due - WallClock.nowMillis()))
        Task { [self] in
            try? await Task.sleep(for: delay)
            timerFired()
        }
    }

    private func timerFired() {
        let toWake = state.withLock { state -> [MessageConsumer] in
            state.timerDue = nil
            guard promoteDue(in: &state, now: WallClock.nowMillis()) else { return [] }
            defer { state.hungry = [] }
            return state.hungry
        }
        for consumer in toWake { consumer.wake() }
    }

    /// Moves the scheduled messages that are due into the pending lanes.
    /// - Returns: Whether any moved.
    private func promoteDue(in state: inout State, now: Int64) -> Bool {
        var moved = false
        while let first = state.scheduled.min, first.entry.notBefore <= now {
            let entry = state.scheduled.removeMin().entry
            state.scheduledBytes -= entry.message.body.byteCount
            if entry.message.expiration != 0 { armExpirySweep(for: entry.message.expiration, in: &state) }
            state.pending.putBack(entry)
            moved = true
        }
        if let next = state.scheduled.min { armTimer(for: next.entry.notBefore, in: &state) }
        return moved
    }

    // MARK: Consuming

    /// Moves a fair share of the deliverable messages the consumer accepts into its buffer, at most
    /// `limit`, honouring exclusivity and message groups. Expired messages and messages delivered
    /// too often are removed and returned for the caller to dispose of. When nothing can be taken,
    /// parks the consumer on this queue so the next suitable message wakes it.
    func fetch(for consumer: MessageConsumer, limit: Int, into buffer: inout Deque<QueueEntry>,
               waitIfEmpty: Bool = true) -> [DiscardedEntry] {
        let id = ObjectIdentifier(consumer)
        var discarded: [DiscardedEntry] = []
        var bytes = 0
        let (moved, producers, pageFrom) = state.withLock { state -> (Int, [Parker], UInt64?) in
            let now = state.scheduled.isEmpty ? 0 : WallClock.nowMillis()
            if !state.scheduled.isEmpty { _ = promoteDue(in: &state, now: now) }
            var clock = now
            func isExpired(_ entry: QueueEntry) -> Bool {
                guard entry.message.expiration != 0 else { return false }
                if clock == 0 { clock = WallClock.nowMillis() }
                return entry.isExpired(at: clock)
            }
            let before = buffer.count
            if state.exclusive.isEmpty || state.exclusive[0] == id {
                let share = max(1, min(limit, state.pending.count / max(1, state.consumerCount)))
                let redelivery = policy.redelivery
                bytes = state.pending.take(upTo: share, into: &buffer, discarded: &discarded) { entry in
                    if isExpired(entry) { return .discard(.expired) }
                    if !redelivery.allowsDelivery(after: entry.message.deliveryCount) {
                        return .discard(.tooManyDeliveries(maximumRedeliveries: redelivery.maximumRedeliveries))
                    }
                    guard consumer.accepts(entry.message) else { return .skip }
                    if let group = entry.groupID {
                        if let owner = state.groupOwners[group] {
                            if owner != id { return .skip }
                        } else {
                            state.groupOwners[group] = id
                        }
                    }
                    return .take
                }
            }
            let moved = buffer.count - before
            let pageFrom = state.stored.isActive ? claimPageRead(in: &state) : nil
            let claimAt = isShared && moved < limit ? claimSharedRead(in: &state) : nil
            // A consumer about to read a page does not wait: it fetches again after reading.
            if moved == 0, waitIfEmpty, pageFrom == nil, claimAt == nil, !state.hungry.contains(where: { $0 === consumer }) {
                state.hungry.append(consumer)
            }
            let producers = discarded.isEmpty ? [] : state.capacityWaiters
            if !producers.isEmpty { state.capacityWaiters = [] }
            return (moved, producers, pageFrom ?? claimAt)
        }
        if moved > 0 {
            counters.inFlight.add(moved, ordering: .relaxed)
            counters.inFlightBytes.add(bytes, ordering: .relaxed)
        }
        for parker in producers { parker.unpark() }
        if let pageFrom {
            if let shared {
                claimFromSharedStore(shared, generation: pageFrom, limit: limit)
            } else if moved > 0 {
                // The window is half drained but this consumer got messages: read the next page in
                // the background, so that the read overlaps the consumer's work and its commits'
                // syncs; consumers that find the window empty meanwhile wait, and the read wakes them.
                DispatchQueue.global(qos: .userInitiated).async(group: pager?.backgroundReads) { [self] in
                    readPage(after: pageFrom)
                }
                return discarded
            } else {
                readPage(after: pageFrom)
            }
            // After a failed read, `retryAfter` keeps this second fetch from reading again.
            if moved == 0 { discarded += fetch(for: consumer, limit: limit, into: &buffer, waitIfEmpty: waitIfEmpty) }
        }
        return discarded
    }

    /// A counter that grows with every message added: a consumer about to park watches it for a
    /// moment first, which is far cheaper than being woken.
    var additions: Int { producerCounters.enqueued.load(ordering: .acquiring) }

    /// Counts a message delivered and acknowledged at once (auto-acknowledge receive): the cheap path.
    func markDeliveredAndAcknowledged(bytes: Int) {
        counters.inFlight.subtract(1, ordering: .relaxed)
        counters.inFlightBytes.subtract(bytes, ordering: .relaxed)
        counters.dequeued.add(1, ordering: .relaxed)
        if isLimited { releaseCapacityWaiters() }
    }

    /// Counts prefetched messages handed back without delivery.
    func markReturned(_ entries: some Collection<QueueEntry>) {
        guard !entries.isEmpty else { return }
        counters.inFlight.subtract(entries.count, ordering: .relaxed)
        counters.inFlightBytes.subtract(entries.reduce(0) { $0 + $1.message.body.byteCount }, ordering: .relaxed)
    }

    /// Counts acknowledged messages: they leave the queue for good.
    func markAcknowledged(count: Int = 1, bytes: Int) {
        counters.inFlight.subtract(count, ordering: .relaxed)
        counters.inFlightBytes.subtract(bytes, ordering: .relaxed)
        counters.dequeued.add(count, ordering: .relaxed)
        if isLimited { releaseCapacityWaiters() }
    }

    /// Counts messages removed without delivery.
    func markDiscarded(_ discarded: [DiscardedEntry]) {
        for item in discarded {
            switch item.reason {
            case .expired: counters.expired.add(1, ordering: .relaxed)
            case .tooManyDeliveries: counters.deadLettered.add(1, ordering: .relaxed)
            }
        }
    }

    private func releaseCapacityWaiters() {
        let waiters = state.withLock { state in
            defer { state.capacityWaiters = [] }
            return state.capacityWaiters
        }
        for parker in waiters { parker.unpark() }
    }

    /// Registers a consumer (for fair shares, exclusivity and statistics).
    func addConsumer(_ consumer: MessageConsumer, exclusive: Bool) {
        state.withLock { state in
            state.consumerCount += 1
            state.consumers.append(consumer)
            // A consumer with another selector may want what the last claim passed over.
            state.stored.generation &+= 1
            if exclusive { state.exclusive.append(ObjectIdentifier(consumer)) }
        }
    }

    /// Unregisters a consumer: forgets that it waited, releases its message groups and, if it was
    /// the active exclusive consumer, lets the others take over.
    func removeConsumer(_ consumer: MessageConsumer) {
        let id = ObjectIdentifier(consumer)
        let (toWake, unwanted) = state.withLock { state -> ([MessageConsumer], [UInt64]) in
            state.consumerCount -= 1
            state.consumers.removeAll { $0 === consumer }
            state.hungry.removeAll { $0 === consumer }
            let unwanted = releasableIfUnconsumed(in: &state)
            let wasActiveExclusive = state.exclusive.first == id
            state.exclusive.removeAll { $0 == id }
            let hadGroups = state.groupOwners.values.contains(id)
            if hadGroups { state.groupOwners = state.groupOwners.filter { $0.value != id } }
            guard wasActiveExclusive || hadGroups else { return ([], unwanted) }
            defer { state.hungry = [] }
            return (state.hungry, unwanted)
        }
        release(unwanted)
        for other in toWake { other.wake() }
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

    /// The deliverable waiting messages, in delivery order, that `selector` accepts: those in
    /// memory, then those only in the store (read page by page, in sequence order).
    /// - Throws: ``ConveyorError/Code/storage`` if the store cannot be read.
    func browse(selector: Selector?) throws(ConveyorError) -> [Message] {
        let now = WallClock.nowMillis()
        func accepts(_ entry: QueueEntry) -> Bool {
            !entry.isExpired(at: now) && (selector?.matchesDelivery(of: entry.message) ?? true)
        }
        let (resident, storedAfter, inTransit) = state.withLock { state in
            // A shared store holds every message, the ones claimed here included.
            isShared ? ([], 0, [])
                : (state.pending.snapshot().filter(accepts).map(\.message),
                   state.stored.isActive ? state.stored.loadedThrough : nil, state.inTransit)
        }
        guard let pager, var after = storedAfter else { return resident }
        var messages = resident
        while true {
            let page = try pager.store.messages(in: pager.key, after: after, limit: pager.window.pageSize)
            for item in page where !inTransit.contains(item.sequence) {
                let entry = QueueEntry(sequence: item.sequence, message: item.message)
                guard entry.notBefore <= now, accepts(entry) else { continue }
                var message = item.message
                message.deliveryCount = item.deliveryCount
                message.redelivered = item.deliveryCount > 0
                messages.append(message)
            }
            guard page.count == pager.window.pageSize, let last = page.last else { return messages }
            after = last.sequence
        }
    }

    /// Whether the queue was deleted (a temporary queue, or a subscription's queue).
    var isDeleted: Bool { state.withLock { $0.isDeleted } }

    /// Removes every waiting message (pending and scheduled) and returns them.
    func removeAll(markingDeleted: Bool = false) -> [QueueEntry] {
        let (removed, waiters) = state.withLock { state -> ([QueueEntry], [Parker]) in
            if markingDeleted {
                state.isDeleted = true
                state.stored = StoredBacklog()
            }
            var removed = state.pending.removeAll { _ in true }
            removed.append(contentsOf: state.scheduled.unordered.map(\.entry))
            state.scheduled = Heap()
            state.scheduledBytes = 0
            defer { state.capacityWaiters = [] }
            return (removed, state.capacityWaiters)
        }
        for parker in waiters { parker.unpark() }
        return removed
    }

    /// Current counters.
    func statistics() -> DestinationStatistics {
        let (depth, bytes, consumers) = state.withLock { ($0.waitingCount, $0.waitingBytes, $0.consumerCount) }
        return DestinationStatistics(
            name: displayName, depth: depth, depthBytes: bytes,
            inFlight: counters.inFlight.load(ordering: .relaxed),
            enqueued: producerCounters.enqueued.load(ordering: .relaxed),
            dequeued: counters.dequeued.load(ordering: .relaxed),
            expired: counters.expired.load(ordering: .relaxed),
            deadLettered: counters.deadLettered.load(ordering: .relaxed),
            dropped: producerCounters.dropped.load(ordering: .relaxed),
            consumers: consumers)
    }

    /// This process's counters in the form processes sharing a store exchange (see
    /// ``SharedMessageStore/shareStatistics(_:)``): cumulative since the queue was created, and live.
    func countersForSharing() -> DestinationCounters {
        DestinationCounters(
            enqueued: producerCounters.enqueued.load(ordering: .relaxed),
            dequeued: counters.dequeued.load(ordering: .relaxed),
            expired: counters.expired.load(ordering: .relaxed),
            deadLettered: counters.deadLettered.load(ordering: .relaxed),
            dropped: producerCounters.dropped.load(ordering: .relaxed),
            consumers: state.withLock { $0.consumerCount },
            inFlight: counters.inFlight.load(ordering: .relaxed),
            inFlightBytes: counters.inFlightBytes.load(ordering: .relaxed))
    }
}

/// The lock-free counters producers of a ``MessageQueue`` update.
private final class ProducerCounters: Sendable {
    let enqueued = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    // Keeps the consumers' counters, allocated next, off this cache line.
    private let padding: (Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0)
}

/// The lock-free counters consumers of a ``MessageQueue`` update.
private final class ConsumerCounters: Sendable {
    let dequeued = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    let inFlightBytes = Atomic<Int>(0)
    let expired = Atomic<Int>(0)
    let deadLettered = Atomic<Int>(0)
}
