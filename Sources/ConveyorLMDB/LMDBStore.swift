import CLMDB
import Conveyor
import Foundation
import Logging
import Synchronization

/// A persistent store on LMDB, the memory-mapped, copy-on-write B-tree database: Conveyor's
/// default engine.
///
/// ```swift
/// let broker = try Broker(store: LMDBStore(directory: "data"))
/// ```
///
/// Every ``commit(_:)`` is atomic, and in the default ``Durability/sync`` mode on disk when it
/// returns. With one process in the durable modes, a commit is first a record of the store's
/// commit log (`commits.log`: one contiguous write and one `fdatasync`, shared by concurrent
/// committers) and reaches LMDB with a *checkpoint*, one durable LMDB transaction for every few
/// megabytes of commits, in which a message sent and consumed in between never appears; reads
/// combine the database with the changes not yet checkpointed, and ``open()`` replays what a
/// crash left in the log (see ``logsCommits``). Otherwise every commit is one LMDB write
/// transaction. Delivery counts written before a delivery
/// (``recordDeliveries(_:)``) cost no transaction and no sync in a single-process store in the
/// durable modes: they go to a side file, the delivery log, and into the database with the next
/// commit (see ``logsDeliveries``). See ``Durability`` for the group-commit and
/// OS-buffered modes and their trade-offs. A message body is stored once, however many queues and
/// durable subscriptions reference it. The memory map grows by itself as data grows, up to
/// ``Options/maximumMapSize``.
///
/// One directory can be open in one `LMDBStore` at a time per process; a second store on the same
/// directory fails to open with ``ConveyorError/Code/storage`` until the first is closed. Across
/// processes, ``Options/sharing`` decides: by default one process at a time (others are refused),
/// or with ``Sharing/processes`` several processes acting as one broker (``SharedMessageStore``).
public final class LMDBStore: MessageStore {
    /// The directory holding the store's files (`data.mdb`, `lock.mdb`, and for a single process
    /// in a durable mode the commit log `commits.log` and the delivery log `deliveries-a.log` and
    /// `deliveries-b.log`), as given.
    public let directory: String
    /// The options the store was created with.
    public let options: Options

    struct Core {
        var environment: LMDBEnvironment?
        /// The canonical directory path registered in ``OpenDirectories`` while open.
        var openPath: String?
        /// The `flock`s that keep other processes out (or in the same group) while open.
        var processLock: ProcessLock?
        var destinations: [StoreQueueKey: UInt64] = [:]
        var lastDestinationID: UInt64 = 0
        /// ``LMDBStore/deliveryLog`` while open, if the store logs deliveries
        /// (``LMDBStore/logsDeliveries``): every write transaction that syncs its meta page folds
        /// what it logged (see ``LMDBStore/write(_:in:directory:syncsMeta:)``).
        var deliveryLog: DeliveryLog?
        /// Where commits go first if the store logs them (``LMDBStore/logsCommits``), while open.
        var commitLog: CommitLog?
        /// The changes of the logged commits not yet in the database; every write transaction
        /// writes them first (a checkpoint).
        var pending = PendingChanges()
        /// Why the last checkpoint of the commit log failed, until a write to the database succeeds.
        var checkpointFailure: ConveyorError?
        /// Why a commit-log record could not be synced. Its changes were already in ``pending``
        /// (see ``LMDBStore/writeToLog(_:in:syncs:)``) and whether it reached the disk is unknown,
        /// so the store stops writing until it is closed and opened again: every later write
        /// fails with this error, and closing writes nothing into the database; the next open
        /// replays what the log holds (the failed record spoiled, so never applied).
        var syncFailure: ConveyorError?
    }

    /// The environment and what commits need. Every transaction of the main environment runs under
    /// this lock, except the read transactions of page reads in a store that logs its commits (see
    /// ``readWithoutTheLock(in:after:limit:)``).
    let core = Mutex(Core())
    private let group: GroupCommit<EncodedBatch>
    /// Held by whoever writes to the commit log or the database: a group commit from writing its
    /// record to applying it (it syncs the record without ``core``'s lock, so that reads go on
    /// meanwhile), a checkpoint, closing. Lock order: this lock before ``core``.
    let logWrites = Mutex(())

    /// With ``Sharing/processes``: the group membership (claims, wake-ups). Lock order: this lock
    /// before ``core``, never the other way round.
    let session = Mutex<SharedSession?>(nil)
    /// With ``Sharing/processes``: the shared counters, apart from ``session`` so that allocating a
    /// sequence never waits for a claim.
    let counters = Mutex<SharedCounters?>(nil)
    /// The sequence counter with ``Sharing/singleProcess``.
    let localSequence = Atomic<UInt64>(0)
    /// The subscription generation with ``Sharing/singleProcess``.
    let localSubscriptionGeneration = Atomic<UInt64>(0)
    /// The thread started by ``startWatching(_:)``, until ``close()``.
    let watcher = Mutex<SessionWatcher?>(nil)
    /// With ``Sharing/processes``: where this process's counters come from (``shareStatistics(_:)``).
    let statisticsSharing = Mutex(StatisticsSharing())
    /// Where ``recordDeliveries(_:)`` writes if the store logs deliveries (``logsDeliveries``),
    /// under a lock of its own (never ``core``'s, which a committer holds through its syncs).
    let deliveryLog = DeliveryLog()

    /// Creates a store on a directory; nothing is touched until ``open()``.
    /// - Parameters:
    ///   - directory: The directory for the store's files; created (with its parents) if missing.
    ///   - options: Durability and map size; see ``Options``.
    public init(directory: String, options: Options = .init()) {
        self.directory = directory
        self.options = options
        self.group = GroupCommit(for: options.durability)
    }

    /// Creates a store on a directory given as a file URL; nothing is touched until ``open()``.
    /// - Parameters:
    ///   - directory: A file URL of the directory for the store's files; created if missing.
    ///   - options: Durability and map size; see ``Options``.
    public convenience init(directory: URL, options: Options = .init()) {
        self.init(directory: directory.path(percentEncoded: false), options: options)
    }

    deinit { close() }

    /// `"lmdb"`.
    public var name: String { "lmdb" }

    /// `true`: commits write and, in the durable modes, sync to disk.
    public var commitMayBlock: Bool { true }

    /// `false` when the store logs deliveries (``logsDeliveries``): ``recordDeliveries(_:)`` is then
    /// one `pwrite` to the delivery log under a lock of its own (only a log that grew past a few
    /// megabytes with no commit at all is folded by a commit there). Otherwise it commits.
    public var recordingDeliveriesMayBlock: Bool { !logsDeliveries }

    /// `true`: a broker keeps a window of each queue in memory and reads the rest from the map.
    public var pagesMessages: Bool { true }

    /// Opens the directory (creating it if needed) and reads what it holds, without the bodies.
    ///
    /// With ``Sharing/singleProcess``, fails if another process has the directory open (naming
    /// it). With ``Sharing/processes``, fails if a single-process store has it; the first process
    /// of a new group resets the group's state (the claims and process-owned subscriptions of the
    /// processes that had it before are all dead).
    /// - Returns: The subscriptions, how many references each queue and subscription holds (from
    ///   the references alone, never reading a body), and the highest sequence ever stored.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is already open (in this object or
    ///   another one on the same directory), if the directory cannot be created or opened, or if
    ///   its files are damaged; the message names the path and the cause.
    public func open() throws(ConveyorError) -> StoreRecovery {
        let (recovery, opened) = try core.withLock { (core) throws(ConveyorError) -> (StoreRecovery, SharedSession?) in
            if let path = core.openPath {
                throw ConveyorError(.storage, "the LMDB store at '\(path)' is already open; close its broker first")
            }
            let path = try Self.prepareDirectory(directory)
            try OpenDirectories.claim(path)
            do throws(ConveyorError) {
                return try open(path: path, in: &core)
            } catch {
                OpenDirectories.release(path)
                throw error
            }
        }
        if let opened {
            counters.withLock { $0 = opened.counters }
            session.withLock { $0 = opened }
        } else {
            let highest = recovery.highestSequence
            var current = localSequence.load(ordering: .relaxed)
            while current < highest {
                let (exchanged, original) = localSequence.compareExchange(
                    expected: current, desired: highest, ordering: .relaxed)
                if exchanged { break }
                current = original
            }
        }
        return recovery
    }

    /// Takes the process locks, opens the environment (and, when sharing, joins the group) and
    /// reads the snapshot; on failure, leaves nothing open or locked.
    private func open(path: String, in core: inout Core) throws(ConveyorError) -> (StoreRecovery, SharedSession?) {
        let lock: ProcessLock
        var isFirstOfGroup = true
        switch options.sharing {
        case .singleProcess:
            lock = try ProcessLock.acquireSingle(directory: path)
        case .processes:
            (lock, isFirstOfGroup) = try ProcessLock.joinGroup(directory: path)
        }
        var joined: SharedSession?
        do throws(ConveyorError) {
            let environment = try LMDBEnvironment.open(path: path, options: options)
            core.environment = environment
            core.openPath = path
            core.processLock = lock
            if isFirstOfGroup {
                // Commits a single-process store logged and did not checkpoint before it died.
                try replayCommitLog(in: &core, directory: path)
                // Delivery counts a single-process store logged and did not fold before it died.
                let folded = try Self.recoverDeliveryLog(environment, directory: path)
                if logsDeliveries {
                    try deliveryLog.open(directory: path, foldedGeneration: folded)
                    core.deliveryLog = deliveryLog
                } else {
                    DeliveryLog.removeFiles(directory: path)
                }
            }
            var snapshot = try Self.readSnapshot(environment)
            core.destinations = snapshot.destinations
            core.lastDestinationID = snapshot.lastDestinationID
            if isFirstOfGroup {
                // Every process that had the store before is gone: so are the subscriptions they
                // owned (in either mode: only a shared group creates them).
                environment.clearStaleReaders()
                let orphans = snapshot.recovery.subscriptions.filter { $0.key.owningProcess != nil }
                if !orphans.isEmpty {
                    try Self.write([EncodedBatch(StoreBatch(orphans.map { .deleteSubscription($0.key) }))], in: &core, directory: directory)
                    snapshot = try Self.readSnapshot(environment)
                    core.destinations = snapshot.destinations
                    core.lastDestinationID = snapshot.lastDestinationID
                }
            }
            if options.sharing == .processes {
                if isFirstOfGroup {
                    try Self.keepLeftoverStatistics(of: path, in: &core)
                    try SharedSession.resetGroup(directory: path)
                    try lock.finishReset()
                }
                joined = try SharedSession.join(directory: path, highestSequence: snapshot.recovery.highestSequence)
            }
            core.deliveryLog?.learn(core.destinations)
            return (snapshot.recovery, joined)
        } catch {
            core.commitLog?.close()
            core.commitLog = nil
            core.pending = PendingChanges()
            core.checkpointFailure = nil
            core.syncFailure = nil
            core.deliveryLog = nil
            deliveryLog.close()
            core.environment?.close()
            core.environment = nil
            core.openPath = nil
            core.processLock = nil
            core.destinations = [:]
            core.lastDestinationID = 0
            lock.release()
            throw error
        }
    }

    /// Reads a page of a queue's references with their messages, in one read transaction. A
    /// delivery count recorded by ``recordDeliveries(_:)`` and not yet written into the database
    /// (see ``logsDeliveries``) counts if it is higher than the stored one.
    ///
    /// A store that logs its commits (``logsCommits``) reads the database without its lock, which
    /// commits need: a queue refilling its window (1,000 messages, ~0.9 ms here) while its consumer
    /// commits no longer holds the commit up (see ``readWithoutTheLock(in:after:limit:)``). In the
    /// other modes every commit is a database write, which would send most such reads back to
    /// read again under the lock.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or a body cannot be read.
    public func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
        if logsCommits, let page = try readWithoutTheLock(in: queue, after: sequence, limit: limit) {
            return page
        }
        return try core.withLock { (core) throws(ConveyorError) -> [RecoveredMessage] in
            guard let environment = core.environment else { throw closedError() }
            let refresh = options.sharing == .processes
            guard let destination = try Self.destinationID(queue, in: &core, refreshing: refresh) else { return [] }
            // References the commit log removed are still in the database: read as many more.
            let extra = core.pending.extraReads(for: destination, after: sequence)
            var page = try Self.readPage(
                environment, destination: destination, after: sequence, limit: limit > Int.max - extra ? Int.max : limit + extra) ?? []
            page = core.pending.merge(page, destination: destination, after: sequence, limit: limit)
            core.deliveryLog?.raise(&page, destination: destination)
            return page
        }
    }

    /// Reads a page as ``messages(in:after:limit:)`` does, with the database's part outside the
    /// store's lock: under the lock it notes what the read needs (and counts the read, so that the
    /// map does not grow and the store does not close meanwhile), reads the database without it,
    /// and merges the pending changes under it again. LMDB's snapshot and the pending changes
    /// belong together only if no write transaction ran in between (every database write writes
    /// the pending changes too, a checkpoint) and the commits meanwhile removed no reference the
    /// read would have needed to make up for; otherwise this returns `nil` and the caller reads
    /// again under the lock.
    /// - Returns: The page, or `nil` if it must be read under the lock.
    private func readWithoutTheLock(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage]? {
        let prepared = try core.withLock { (core) throws(ConveyorError) -> (LMDBEnvironment, UInt64, Int, Int)? in
            guard let environment = core.environment else { throw closedError() }
            guard let destination = try Self.destinationID(queue, in: &core, refreshing: false) else { return nil }
            let extra = core.pending.extraReads(for: destination, after: sequence)
            environment.beginUnlockedRead()
            return (environment, destination, extra, environment.lastTransactionID)
        }
        guard let (environment, destination, extra, lastTransaction) = prepared else { return [] }
        let readLimit = limit > Int.max - extra ? Int.max : limit + extra
        let read = Result { () throws(ConveyorError) in
            try Self.readPage(
                environment, destination: destination, after: sequence, limit: readLimit, unlocked: true,
                whileReading: options.duringUnlockedRead)
        }
        environment.endUnlockedRead()
        guard let stored = try read.get() else { return nil }
        return core.withLock { core -> [RecoveredMessage]? in
            guard core.environment === environment, environment.lastTransactionID == lastTransaction else { return nil }
            var page = core.pending.merge(stored, destination: destination, after: sequence, limit: limit)
            // Short of `limit` while the database had more: commits meanwhile removed some of what
            // was read, and the next references are still to be read.
            if page.count < limit, stored.count == readLimit { return nil }
            core.deliveryLog?.raise(&page, destination: destination)
            return page
        }
    }

    /// Applies a batch in one LMDB write transaction.
    ///
    /// With ``Sharing/processes``, once the batch is stored the claims on the references it
    /// removes (or on the queues it purges or deletes) are deleted, the subscription generation is
    /// bumped if it saves or deletes subscriptions, and the other processes are woken if it adds
    /// messages or changes subscriptions.
    ///
    /// Blocks the calling thread for the write and, in the durable modes, the sync; the broker calls
    /// it off Swift's cooperative pool (``commitMayBlock``).
    /// - Parameter batch: The changes, applied in order, all or nothing.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or the write fails (a full
    ///   disk, an I/O error), ``ConveyorError/Code/resourceAllocation`` if the map would exceed
    ///   ``Options/maximumMapSize``; nothing of the batch is applied then.
    public func commit(_ batch: StoreBatch) throws(ConveyorError) {
        try commit(batch, needsSync: true)
        didCommit(batch)
    }

    /// Hands the batch to a group commit whose leader waits for one more committer (see
    /// ``MessageStore/commitWithoutBlocking(_:completion:)``); in the durable modes only.
    public func commitWithoutBlocking(_ batch: StoreBatch, completion: @escaping @Sendable (Result<Void, ConveyorError>) -> Void) -> Bool {
        guard options.durability != .osBuffered, !batch.isEmpty, group.awaitsOneMore else { return false }
        return group.handOff(EncodedBatch(batch)) { result in
            if case .success = result { self.didCommit(batch) }
            completion(result)
        }
    }

    /// Commits through the group commit (or, OS-buffered, at once); `needsSync: false` for delivery
    /// counts that may skip the meta page's sync (see ``recordDeliveries(_:)``).
    func commit(_ batch: StoreBatch, needsSync: Bool) throws(ConveyorError) {
        // Encoded here, on the committer's thread, not by the group's leader (see EncodedBatch).
        let encoded = EncodedBatch(batch)
        if options.durability != .osBuffered, !batch.isEmpty {
            try group.commit(encoded, needsSync: needsSync) { batches, needsSync in write(batches, syncsMeta: needsSync) }
        } else {
            try logWrites.withLock { (_) throws(ConveyorError) in
                try core.withLock { (core) throws(ConveyorError) in
                    try Self.write([encoded], in: &core, directory: directory)
                }
            }
        }
    }

    /// Flushes and closes the files. The store can be opened again afterwards; closing a closed
    /// store does nothing.
    ///
    /// If the store logs deliveries (``logsDeliveries``), the counts recorded since the last commit
    /// are first written into the database in a commit of their own, so that the delivery log is
    /// left empty; if that fails, they stay in the log for the next ``open()``, and the failure is
    /// logged (``Options/logger``), as are the failures of leaving the group below.
    ///
    /// With ``Sharing/processes``, leaves the group first: stops the watching thread, deletes the
    /// subscriptions this process owns (with their messages), adds this process's counters to the
    /// ones the store keeps (``shareStatistics(_:)``), releases its claims (the messages become
    /// claimable by the others), removes its member files and wakes the others.
    public func close() {
        leaveGroup()
        logWrites.withLock { _ in core.withLock { core in
            if core.deliveryLog != nil || !core.pending.isEmpty {
                do throws(ConveyorError) {
                    // Checkpoints the commit log and folds the delivery log, if they hold anything.
                    try Self.write([], in: &core, directory: directory)
                } catch {
                    options.logger.warning("could not fold the delivery log while closing (nor write the commit log into the database); the next open applies them",
                                           metadata: ["directory": "\(directory)", "error": "\(error)"])
                }
                core.deliveryLog = nil
                deliveryLog.close()
            }
            core.commitLog?.close()
            core.commitLog = nil
            core.pending = PendingChanges()
            core.checkpointFailure = nil
            core.syncFailure = nil
            core.environment?.close()
            core.environment = nil
            if let path = core.openPath { OpenDirectories.release(path) }
            core.openPath = nil
            core.processLock?.release()
            core.processLock = nil
            core.destinations = [:]
        } }
    }

    // MARK: Writing

    /// Writes a group of batches in one transaction; if that fails, writes each alone so that one
    /// failing batch does not fail the others.
    private func write(_ batches: [EncodedBatch], syncsMeta: Bool) -> [Result<Void, ConveyorError>] {
        logWrites.withLock { _ in
            let logged = core.withLock { core -> Result<LoggedGroup?, ConveyorError>? in
                if let failure = core.syncFailure { return .failure(failure) }
                guard let operations = Self.loggableOperations(of: batches, in: core) else { return nil }
                do throws(ConveyorError) {
                    return .success(try writeToLog(consume operations, in: &core, syncs: syncsMeta))
                } catch {
                    return .failure(error)
                }
            }
            guard let logged else { return writeToDatabase(batches, syncsMeta: syncsMeta) }
            let outcome = Result { () throws(ConveyorError) in
                if let group = try logged.get() { try finishLogging(group, syncs: syncsMeta) }
            }
            return Array(repeating: outcome, count: batches.count)
        }
    }

    /// Writes a group of batches in one LMDB transaction, under the store's lock; if that fails,
    /// writes each alone so that one failing batch does not fail the others.
    private func writeToDatabase(_ batches: [EncodedBatch], syncsMeta: Bool) -> [Result<Void, ConveyorError>] {
        core.withLock { core in
            do throws(ConveyorError) {
                try Self.write(batches, in: &core, directory: directory, syncsMeta: syncsMeta)
                return Array(repeating: .success(()), count: batches.count)
            } catch {
                if batches.count == 1 { return [.failure(error)] }
                return batches.map { batch in
                    Result { () throws(ConveyorError) in
                        try Self.write([batch], in: &core, directory: directory, syncsMeta: syncsMeta)
                    }
                }
            }
        }
    }

    /// Writes the batches in one transaction; `syncsMeta: false` leaves the meta page unsynced
    /// (see ``recordDeliveries(_:)``).
    ///
    /// The changes still only in the commit log (``Core/pending``) go first, in the same
    /// transaction, which then syncs its meta page whatever `syncsMeta` says: a write straight to
    /// the database never overtakes a logged commit, and the log starts its next epoch once its
    /// changes are in the database (see ``CommitLog``).
    ///
    /// If the store logs deliveries (``logsDeliveries``), a transaction that syncs its meta page
    /// also folds the counts logged since the last fold (``DeliveryLog/beginFold()``): after the
    /// batches, so that a count a batch sets wins over one logged before it. Empty batches then
    /// still make a transaction.
    static func write(_ batches: [EncodedBatch], in core: inout Core, directory: String, syncsMeta: Bool = true) throws(ConveyorError) {
        guard let environment = core.environment else {
            throw ConveyorError(.storage, "the LMDB store at '\(directory)' is closed; open a broker on it first")
        }
        if let failure = core.syncFailure { throw failure }
        let pending = core.pending
        let syncsMeta = syncsMeta || !pending.isEmpty
        let fold = syncsMeta ? core.deliveryLog?.beginFold() : nil
        guard fold != nil || !pending.isEmpty || batches.contains(where: { !$0.batch.isEmpty }) else { return }
        let checkpoint = syncsMeta ? core.commitLog?.epoch : nil
        let known = core.destinations
        let lastID = core.lastDestinationID
        let databases = environment.databases
        let setByBatches = fold == nil ? [] : countsSet(by: batches, destinations: known)
        let outcome = try environment.write(syncsMeta: syncsMeta) { (transaction) throws(LMDBError) in
            var writer = LMDBBatchWriter(
                transaction: transaction, databases: databases, knownDestinations: known,
                lastDestinationID: lastID)
            if !pending.isEmpty { try writer.apply(pending) }
            for batch in batches { try writer.apply(batch) }
            if let fold {
                try transaction.raiseDeliveryCounts(fold.entries, skipping: setByBatches, in: databases)
            }
            let folded = max(fold?.generation ?? 0, pending.foldedDeliveries)
            if folded > 0 { try transaction.setFoldedDeliveryGeneration(folded, in: databases) }
            if let checkpoint { try transaction.setCheckpointedCommitEpoch(checkpoint, in: databases) }
            try writer.finish()
            return (writer.newDestinations, writer.lastDestinationID)
        }
        // A failed write throws above and leaves the fold unfinished: the log keeps every count.
        if let fold { core.deliveryLog?.finishFold(fold) }
        if checkpoint != nil {
            core.checkpointFailure = nil
            core.pending = PendingChanges()
            core.commitLog?.startNextEpoch()
        }
        if !outcome.0.isEmpty {
            core.destinations.merge(outcome.0) { _, new in new }
            core.deliveryLog?.learn(outcome.0)
        }
        core.lastDestinationID = outcome.1
    }

    // MARK: Directory

    /// Creates the directory if needed and returns its canonical path.
    private static func prepareDirectory(_ directory: String) throws(ConveyorError) -> String {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ConveyorError(
                    .storage, "cannot open the LMDB store at '\(directory)': it is a file, not a directory")
            }
        } else {
            do {
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ConveyorError(
                    .storage, "cannot create the LMDB store directory '\(directory)': \(error.localizedDescription)",
                    underlying: error)
            }
        }
        guard let resolved = realpath(directory, nil) else {
            let reason = String(cString: strerror(errno))
            throw ConveyorError(.storage, "cannot resolve the LMDB store directory '\(directory)': \(reason)")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension MessageStore where Self == LMDBStore {
    /// An ``LMDBStore`` on a directory: `Broker(store: .lmdb(directory: "data"))`.
    /// - Parameters:
    ///   - directory: The directory for the store's files; created if missing.
    ///   - options: Durability and map size.
    /// - Returns: The store, not yet open.
    public static func lmdb(directory: String, options: LMDBStore.Options = .init()) -> LMDBStore {
        LMDBStore(directory: directory, options: options)
    }
}

extension LMDBStore: SyncedWriteCounting {
    /// The group commits written with a synchronous LMDB commit (see `SyncedWriteCounting`);
    /// OS-buffered commits and delivery-count commits that sync only the data pages do not count.
    package var syncedWrites: UInt64 { group.syncedWrites }
}
