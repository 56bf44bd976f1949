import CLMDB
import Conveyor
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The multi-process side of the LMDB store (``LMDBStore/Sharing/processes``).
///
/// How the pieces fit:
/// - Sequences come from a counter in shared memory (``SharedCounters``), raised at every open to
///   the highest sequence stored, so they never go backwards when a group restarts.
/// - A claim is a row in a second LMDB environment (``ClaimsEnvironment``). ``claim(in:limit:accepts:)``
///   begins the claims write transaction *before* its read snapshot of the messages, and an
///   acknowledgement deletes the reference before its claim: so a claimer either still sees the
///   claim, or no longer sees the reference, and a message is never delivered twice.
/// - Each member has a FIFO the others write a byte into after committing messages or subscription
///   changes, or releasing claims (``WakeChannel``), and a lock file it holds while alive. The
///   watcher thread (``startWatching(_:)``) waits on the FIFO and, every 250 ms, reaps members
///   whose lock file is no longer locked (``reapDeadMembers()``).
extension LMDBStore: SharedMessageStore {
    /// Whether the store was opened with ``Sharing/processes`` (the broker then uses it through
    /// ``SharedMessageStore``).
    public var isSharedAcrossProcesses: Bool { options.sharing == .processes }

    /// `"<member ID>-<process ID>"`: the member ID is unique while the group lives (member IDs are
    /// handed out by the claims environment and never reused until the whole group restarts, which
    /// deletes every process-owned subscription); the process ID is there for people reading
    /// subscription names. `"0-<process ID>"` with ``Sharing/singleProcess``, and while closed.
    public var processToken: String {
        session.withLock { $0?.member.token } ?? "0-\(getpid())"
    }

    /// The next sequence number: from the counter shared by the group with ``Sharing/processes``,
    /// from a counter of this store (starting above the highest stored sequence) otherwise.
    public func allocateSequence() -> UInt64 {
        if let next = counters.withLock({ $0?.nextSequence() }) { return next }
        return localSequence.add(1, ordering: .relaxed).newValue
    }

    /// Claims up to `limit` unclaimed references of `queue` that `accepts` accepts, in sequence
    /// order. `accepts` runs while the store holds its locks: it must not call the store.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed, was not opened with
    ///   ``Sharing/processes``, or cannot be read or written.
    public func claim(in queue: StoreQueueKey, limit: Int, accepts: (Message) -> Bool) throws(ConveyorError) -> [RecoveredMessage] {
        try requireSharing("claim messages")
        return try session.withLock { (session) throws(ConveyorError) -> [RecoveredMessage] in
            guard let session else { throw closedError() }
            guard limit > 0 else { return [] }
            let member = session.member.id
            let claimsPath = session.claims.path
            // Claims transaction first, snapshot second: see the type's documentation.
            return try session.claims.write { (table) throws(any Error) -> [RecoveredMessage] in
                let (destination, found) = try core.withLock { (core) throws(ConveyorError) -> (UInt64?, [RecoveredMessage]) in
                    guard let environment = core.environment else { throw closedError() }
                    guard let destination = try Self.destinationID(queue, in: &core, refreshing: true) else { return (nil, []) }
                    let found = try Self.readUnclaimed(
                        environment, destination: destination, limit: limit, table: table, claimsPath: claimsPath,
                        accepts: accepts)
                    return (destination, found)
                }
                guard let destination else { return [] }
                for message in found {
                    try table.claim(destination: destination, sequence: message.sequence, member: member)
                }
                return found
            }
        }
    }

    /// Gives claimed references back and wakes the other processes. Sequences this process does
    /// not hold claims on are ignored.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed, was not opened with
    ///   ``Sharing/processes``, or the claims cannot be written.
    public func release(_ sequences: [UInt64], in queue: StoreQueueKey) throws(ConveyorError) {
        try requireSharing("release claims")
        try session.withLock { (session) throws(ConveyorError) in
            guard let session else { throw closedError() }
            guard !sequences.isEmpty else { return }
            let destination = try core.withLock { (core) throws(ConveyorError) -> UInt64? in
                guard core.environment != nil else { throw closedError() }
                return try Self.destinationID(queue, in: &core, refreshing: true)
            }
            guard let destination else { return }
            let member = session.member.id
            let released = try session.claims.write { (table) throws(any Error) -> Int in
                var count = 0
                for sequence in sequences where try table.release(destination: destination, sequence: sequence, heldBy: member) {
                    count += 1
                }
                return count
            }
            if released > 0 { session.notifyOthers() }
        }
    }

    /// The references each queue and subscription holds now, counted in one read transaction.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    public func storedQueues() throws(ConveyorError) -> [StoreQueueKey: StoredQueueSummary] {
        try core.withLock { (core) throws(ConveyorError) -> [StoreQueueKey: StoredQueueSummary] in
            guard let environment = core.environment else { throw closedError() }
            let databases = environment.databases
            return try environment.read { (transaction) throws(any Error) -> [StoreQueueKey: StoredQueueSummary] in
                try SnapshotReader(transaction: transaction, databases: databases).read().recovery.queues
            }
        }
    }

    /// The subscription records in the store now, read in one transaction.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    public func currentSubscriptions() throws(ConveyorError) -> [SubscriptionRecord] {
        try core.withLock { (core) throws(ConveyorError) -> [SubscriptionRecord] in
            guard let environment = core.environment else { throw closedError() }
            let databases = environment.databases
            return try environment.read { (transaction) throws(any Error) -> [SubscriptionRecord] in
                try SnapshotReader(transaction: transaction, databases: databases).subscriptionRecords()
            }
        }
    }

    /// Bumped (in shared memory, with ``Sharing/processes``) after every commit that saves or
    /// deletes a subscription, before that commit returns.
    public var subscriptionGeneration: UInt64 {
        counters.withLock { $0?.subscriptionGeneration } ?? localSubscriptionGeneration.load(ordering: .sequentiallyConsistent)
    }

    /// 500 ms: the reaper looks for dead processes every 250 ms (``startWatching(_:)``), and
    /// releasing their claims takes a few milliseconds more; the rest is slack for a busy machine.
    public var handOverInterval: Duration { .milliseconds(500) }

    /// Starts the watching thread (with ``Sharing/processes``; with ``Sharing/singleProcess`` there
    /// is no other process to watch and this does nothing). `onChange` runs on that thread when
    /// another process wakes this one (it committed messages or subscription changes, or released
    /// claims) and when the reaper released the claims of a dead process. Calling it again while
    /// watching does nothing.
    public func startWatching(_ onChange: @escaping @Sendable () -> Void) {
        guard let channel = session.withLock({ $0?.channel }) else { return }
        watcher.withLock { watcher in
            guard watcher == nil else { return }
            watcher = SessionWatcher(channel: channel, store: self, onChange: onChange)
        }
    }

    // MARK: Reaping

    /// Releases what dead members of the group held: their process-owned subscriptions (deleted
    /// with their messages, through ``commit(_:)``), their claims, their member rows and files;
    /// their last published counters are kept first (``keepStatistics(ofDead:)``). Then wakes the
    /// others. A member is dead when its lock file is missing or can be locked.
    /// The watcher runs this every 250 ms; tests call it directly.
    /// - Returns: How many dead members were reaped.
    func reapDeadMembers() -> Int {
        guard isSharedAcrossProcesses else { return 0 }
        // Holding a dead member's lock file keeps other reapers off it while this one works.
        let dead: [(member: GroupMember, lock: Int32?)] = session.withLock { session in
            guard let session, let members = try? session.claims.read({ (table) throws(LMDBError) in try table.members() })
            else { return [] }
            var dead: [(GroupMember, Int32?)] = []
            for member in members where member.id != session.member.id {
                let descriptor = POSIX.open(WakeChannel.lockPath(session.membersDirectory, member: member.id), O_RDWR)
                if descriptor < 0 {
                    if errno == ENOENT { dead.append((member, nil)) }
                } else if POSIX.lock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                    dead.append((member, descriptor))
                } else {
                    POSIX.close(descriptor)
                }
            }
            return dead
        }
        guard !dead.isEmpty else { return 0 }
        defer { for entry in dead { if let lock = entry.lock { POSIX.close(lock) } } }

        // Their subscriptions first: a member is only unlisted once they are gone, so a failure
        // here leaves it for the next round.
        let tokens = Set(dead.map(\.member.token))
        var cleared = dead.map(\.member)
        do throws(ConveyorError) {
            let owned = try currentSubscriptions().filter { $0.key.owningProcess.map(tokens.contains) ?? false }
            if !owned.isEmpty { try commit(StoreBatch(owned.map { .deleteSubscription($0.key) })) }
            try keepStatistics(ofDead: cleared)
        } catch {
            cleared = []
        }
        guard !cleared.isEmpty else { return 0 }
        let reaped = session.withLock { session -> Int in
            guard let session else { return 0 }
            do throws(ConveyorError) {
                try session.claims.write { (table) throws(any Error) -> Void in
                    for member in cleared {
                        try table.releaseAll(member: member.id)
                        try table.remove(member: member.id)
                        try table.removePublishedStatistics(of: member.id)
                    }
                }
            } catch {
                return 0
            }
            for member in cleared {
                POSIX.unlinkIfPresent(WakeChannel.fifoPath(session.membersDirectory, member: member.id))
                POSIX.unlinkIfPresent(WakeChannel.lockPath(session.membersDirectory, member: member.id))
            }
            session.counters.bumpMemberGeneration()
            session.notifyOthers()
            session.claims.clearStaleReaders()
            core.withLock { $0.environment?.clearStaleReaders() }
            return cleared.count
        }
        return reaped
    }

    // MARK: Store internals

    /// What a shared store does after a batch is stored; see ``commit(_:)``.
    func didCommit(_ batch: StoreBatch) {
        guard isSharedAcrossProcesses else {
            if batch.operations.contains(where: \.changesSubscriptions) {
                localSubscriptionGeneration.add(1, ordering: .sequentiallyConsistent)
            }
            return
        }
        var removed: [(key: StoreQueueKey, sequence: UInt64)] = []
        var dropped: [StoreQueueKey] = []
        var adds = false
        var subscriptions = false
        for operation in batch.operations {
            switch operation {
            case .add: adds = true
            case .remove(let sequence, let key): removed.append((key, sequence))
            case .setDeliveryCount: break
            case .saveSubscription: subscriptions = true
            case .deleteSubscription(let key):
                subscriptions = true
                dropped.append(.subscription(key))
            case .purge(let key): dropped.append(key)
            }
        }
        guard adds || subscriptions || !removed.isEmpty || !dropped.isEmpty else { return }
        let (removals, drops) = core.withLock { core in
            (removed.compactMap { entry in core.destinations[entry.key].map { ($0, entry.sequence) } },
             dropped.compactMap { core.destinations[$0] })
        }
        session.withLock { session in
            guard let session else { return }
            if !removals.isEmpty || !drops.isEmpty {
                // The batch is stored: a claim left behind by a failure here names a reference that
                // no longer exists (sequences are never reused), so it is harmless, and goes when
                // its member leaves or the group restarts.
                _ = try? session.claims.write { (table) throws(any Error) in
                    for (destination, sequence) in removals { try table.release(destination: destination, sequence: sequence) }
                    for destination in drops { try table.releaseAll(destination: destination) }
                }
            }
            if subscriptions { session.counters.bumpSubscriptionGeneration() }
            if adds || subscriptions { session.notifyOthers() }
        }
    }

    /// Leaves the process group, if any; see ``close()``.
    func leaveGroup() {
        if let watcher = watcher.withLock({ watcher in defer { watcher = nil }; return watcher }) {
            watcher.stop()
        }
        guard let token = session.withLock({ $0?.member.token }) else { return }
        do throws(ConveyorError) {
            let owned = try currentSubscriptions().filter { $0.key.owningProcess == token }
            if !owned.isEmpty { try commit(StoreBatch(owned.map { .deleteSubscription($0.key) })) }
        } catch {
            // They are deleted when the group next restarts, as a dead process's are.
            options.logger.warning("could not delete this process's subscriptions while closing",
                                   metadata: ["directory": "\(directory)", "error": "\(error)"])
        }
        keepOwnStatistics()
        session.withLock { session in
            session?.leave()
            session = nil
        }
        counters.withLock { counters in
            counters?.unmap()
            counters = nil
        }
    }

    /// The ID of a queue or subscription; with `refreshing`, first reads the destinations another
    /// process may have added when `key` is not known yet.
    static func destinationID(_ key: StoreQueueKey, in core: inout Core, refreshing: Bool) throws(ConveyorError) -> UInt64? {
        if let id = core.destinations[key] { return id }
        guard refreshing, let environment = core.environment else { return nil }
        let after = core.lastDestinationID
        let databases = environment.databases
        let found = try environment.read { (transaction) throws(any Error) -> [(StoreQueueKey, UInt64)] in
            try transaction.destinations(after: after, in: databases.destinations)
        }
        for (destinationKey, id) in found {
            core.destinations[destinationKey] = id
            core.lastDestinationID = max(core.lastDestinationID, id)
        }
        return core.destinations[key]
    }

    /// Reads, in one snapshot, up to `limit` references of a destination that no claim in `table`
    /// covers and that `accepts` accepts, with their bodies.
    private static func readUnclaimed(
        _ environment: LMDBEnvironment, destination: UInt64, limit: Int, table: ClaimsTable, claimsPath: String,
        accepts: (Message) -> Bool
    ) throws(ConveyorError) -> [RecoveredMessage] {
        let databases = environment.databases
        return try environment.read { (transaction) throws(any Error) -> [RecoveredMessage] in
            let reader = SnapshotReader(transaction: transaction, databases: databases)
            var found: [RecoveredMessage] = []
            var candidates: [(sequence: UInt64, deliveryCount: Int)] = []
            // Walk the references in batches: the cursor's values are only valid while it stays.
            var after: UInt64 = 0
            var exhausted = false
            while found.count < limit, !exhausted {
                candidates.removeAll(keepingCapacity: true)
                try transaction.withCursor(databases.references) { (cursor) throws(LMDBError) in
                    var entry = try LMDBKey.with(destination: destination, sequence: after) { (key) throws(LMDBError) in
                        try cursor.seek(atLeast: key)
                    }
                    while candidates.count < 256, let item = entry {
                        guard let reference = LMDBKey.reference(item.key) else { throw .corrupted("message reference") }
                        guard reference.destination == destination else { break }
                        guard let value = ReferenceValue.read(item.value) else { throw .corrupted("message reference") }
                        candidates.append((reference.sequence, Int(value.deliveryCount)))
                        entry = try cursor.next()
                    }
                    if entry == nil || candidates.count < 256 { exhausted = true }
                }
                if !exhausted, let last = candidates.last {
                    if last.sequence == .max { exhausted = true } else { after = last.sequence + 1 }
                }
                for candidate in candidates where found.count < limit {
                    let claimed: Bool
                    do throws(LMDBError) {
                        claimed = try table.claimant(destination: destination, sequence: candidate.sequence) != nil
                    } catch {
                        throw error.storageError(path: claimsPath, action: "read the claims of")
                    }
                    if claimed { continue }
                    var message = try reader.body(candidate.sequence)
                    // Selectors naming JMSXDeliveryCount see the recorded count, as in a local queue.
                    message.deliveryCount = candidate.deliveryCount
                    guard accepts(message) else { continue }
                    found.append(RecoveredMessage(
                        sequence: candidate.sequence, message: message, deliveryCount: candidate.deliveryCount))
                }
            }
            return found
        }
    }

    private func requireSharing(_ action: String) throws(ConveyorError) {
        guard isSharedAcrossProcesses else {
            throw ConveyorError(
                .storage,
                "cannot \(action) in the LMDB store at '\(directory)': it was opened with sharing: .singleProcess; "
                    + "claims need sharing: .processes")
        }
    }

    func closedError() -> ConveyorError {
        ConveyorError(.storage, "the LMDB store at '\(directory)' is closed; open a broker on it first")
    }

    // MARK: Testing

    /// Lists a member that has no files (as a member that died half-cleaned-up would be) holding
    /// claims on `claims`; for tests of the reaper.
    /// - Returns: The member.
    func addMemberForTesting(pid: Int32, claims: [(StoreQueueKey, UInt64)]) throws(ConveyorError) -> GroupMember {
        try session.withLock { (session) throws(ConveyorError) -> GroupMember in
            guard let session else { throw closedError() }
            var destinations: [UInt64?] = []
            for (key, _) in claims {
                destinations.append(try core.withLock { (core) throws(ConveyorError) in
                    try Self.destinationID(key, in: &core, refreshing: true)
                })
            }
            let member = try session.claims.write { (table) throws(any Error) -> GroupMember in
                let member = GroupMember(id: try table.allocateMemberID(), pid: pid)
                try table.add(member)
                for ((_, sequence), destination) in zip(claims, destinations) {
                    guard let destination else { continue }
                    try table.claim(destination: destination, sequence: sequence, member: member.id)
                }
                return member
            }
            session.counters.bumpMemberGeneration()
            return member
        }
    }

    /// The member holding a claim on a reference, if any; for tests.
    func claimHolderForTesting(in queue: StoreQueueKey, sequence: UInt64) throws(ConveyorError) -> UInt64? {
        try session.withLock { (session) throws(ConveyorError) -> UInt64? in
            guard let session else { throw closedError() }
            let destination = try core.withLock { (core) throws(ConveyorError) in
                try Self.destinationID(queue, in: &core, refreshing: true)
            }
            guard let destination else { return nil }
            return try session.claims.read { (table) throws(LMDBError) in
                try table.claimant(destination: destination, sequence: sequence)
            }
        }
    }
}

private extension StoreOperation {
    /// Whether the operation saves or deletes a durable subscription.
    var changesSubscriptions: Bool {
        switch self {
        case .saveSubscription, .deleteSubscription: true
        default: false
        }
    }
}
