import CLMDB
import Conveyor
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LMDBStore {
    /// Whether commits go to the commit log first (``CommitLog``): with ``Sharing/singleProcess``
    /// (processes sharing a store must find every commit in the database) in ``Durability/sync``
    /// and ``Durability/groupCommit`` modes. An OS-buffered commit syncs nothing, so the log would
    /// save nothing there.
    ///
    /// Whatever the mode, ``open()`` writes into the database what a commit log in the directory
    /// holds (left by a single-process store that did not close), and a store that does not log
    /// removes the file.
    var logsCommits: Bool {
        options.sharing == .singleProcess && options.durability != .osBuffered
    }

    /// Writes into the database what the directory's commit log holds beyond the stored
    /// checkpoint, in one durable transaction, and opens the log if the store logs commits
    /// (``logsCommits``); otherwise removes it.
    ///
    /// A database that never stored a checkpoint epoch (a new one, or one whose data file was
    /// replaced) never wrote to the log either: a log found beside it belongs to another database
    /// and is set aside, with a warning, rather than replayed into this one; and the epoch is stored
    /// (as 0) so that the next open trusts the log again.
    func replayCommitLog(in core: inout Core, directory path: String) throws(ConveyorError) {
        guard let environment = core.environment else { return }
        let databases = environment.databases
        let stored = try environment.read { (transaction) throws(any Error) -> UInt64? in
            try transaction.hasMetadata(MetadataKey.checkpointedCommits, in: databases)
                ? transaction.checkpointedCommitEpoch(in: databases) : nil
        }
        let checkpointed = stored ?? 0
        if stored == nil {
            if CommitLog.holdsRecords(in: path) {
                options.logger.warning(
                    "setting aside a commit log that does not belong to this database (its data file was replaced)",
                    metadata: ["directory": "\(path)", "file": "\(CommitLog.fileName).orphaned"])
                _ = rename(path + "/" + CommitLog.fileName, path + "/" + CommitLog.fileName + ".orphaned")
            }
            if logsCommits {
                try environment.write { (transaction) throws(LMDBError) in
                    try transaction.setCheckpointedCommitEpoch(0, in: databases)
                }
            }
        }
        let logged = try CommitLog.logged(in: path, after: checkpointed)
        core.commitLog = try CommitLog(directory: path, checkpointed: checkpointed)
        if !logged.isEmpty {
            for operation in logged { core.pending.apply(operation) }
            try Self.write([], in: &core, directory: directory)
        }
        if !logsCommits {
            core.commitLog?.close()
            core.commitLog = nil
            CommitLog.removeFile(directory: path)
        }
    }

    /// The operations of a group of batches as the commit log records them, or `nil` if the group
    /// must be written to the database directly: the store does not log commits, a batch does
    /// more than add, remove and count deliveries (subscriptions and purges go to the database), a
    /// message goes to a queue that has no destination ID yet, the map might not hold the messages
    /// at the next checkpoint (near ``Options/maximumMapSize``: the direct write then fails and
    /// stores nothing), or the log has grown past ``CommitLog/overflowThreshold``.
    ///
    /// After a checkpoint failed (``Core/checkpointFailure``: a full disk or map), a group that
    /// adds messages goes to the database directly too, where it meets the failure (and fails,
    /// storing nothing) or succeeds and ends it; acknowledgements are still logged, since they
    /// shrink what the checkpoint must write.
    static func loggableOperations(of batches: [EncodedBatch], in core: Core) -> [LoggedOperation]? {
        guard let log = core.commitLog, log.size < CommitLog.overflowThreshold, let environment = core.environment
        else { return nil }
        var addedBytes = 0
        var operations: [LoggedOperation] = []
        operations.reserveCapacity(batches.reduce(0) { $0 + $1.batch.operations.count })
        // Operations mostly name one queue after another: look each up once.
        var last: (key: StoreQueueKey, id: UInt64?)?
        func id(of queue: StoreQueueKey) -> UInt64? {
            if let last, last.key == queue { return last.id }
            let found = core.destinations[queue]
            last = (queue, found)
            return found
        }
        // And the messages of a transaction mostly go to the same queues: one list of IDs for them.
        var lastAdded: (targets: [StoreQueueKey], destinations: [UInt64])?
        for batch in batches {
            var added = 0
            for operation in batch.batch.operations {
                switch operation {
                case .add(let stored):
                    defer { added += 1 }
                    if core.checkpointFailure != nil { return nil }
                    addedBytes += PendingChanges.footprint(of: stored.message)
                    var destinations: [UInt64] = []
                    if let lastAdded, lastAdded.targets == stored.targets {
                        destinations = lastAdded.destinations
                    } else {
                        destinations.reserveCapacity(stored.targets.count)
                        for target in stored.targets {
                            guard let id = id(of: target) else { return nil }
                            if !destinations.contains(id) { destinations.append(id) }
                        }
                        lastAdded = (stored.targets, destinations)
                    }
                    operations.append(.add(
                        sequence: stored.sequence, message: stored.message, encoded: batch.messages[added], destinations: destinations))
                case .remove(let sequence, let queue):
                    // A queue without an ID holds no references: nothing to remove.
                    guard let id = id(of: queue) else { continue }
                    operations.append(.remove(sequence: sequence, destination: id))
                case .setDeliveryCount(let sequence, let queue, let count):
                    guard let id = id(of: queue) else { continue }
                    operations.append(.setDeliveryCount(sequence: sequence, destination: id, count: UInt32(clamping: max(count, 0))))
                case .saveSubscription, .deleteSubscription, .purge:
                    return nil
                }
            }
        }
        // A commit the map could not hold at the next checkpoint must fail now, as a direct write.
        if addedBytes > 0, environment.roomLeft < 2 * (core.pending.bodyBytes + log.size + addedBytes) + (1 << 20) {
            return nil
        }
        return operations
    }

    /// A group's record, written and applied to the pending changes, not yet synced.
    struct LoggedGroup {
        let record: CommitLog.WrittenRecord
        let fold: DeliveryLog.Fold?
    }

    /// Writes a group's operations to the commit log as one record, with the delivery counts
    /// logged since the last fold when the group syncs, and applies them to the pending changes.
    /// Then ``finishLogging(_:syncs:)`` syncs the record.
    ///
    /// The disk starts writing the record at once (``FileStoreIO/startWriteback(_:offset:length:)``)
    /// and the changes are applied meanwhile, before the sync rather than after it, which takes
    /// them off the time every committer of the group waits. A page read during the sync may so
    /// return a message whose send is still committing: the broker does not add those twice (see
    /// `MessageQueue.beginTransit`). A change applied cannot be taken back: if the sync fails, the
    /// store stops writing (``Core/syncFailure``).
    /// - Returns: The record, or `nil` if there was nothing to write.
    /// - Throws: ``ConveyorError/Code/storage`` if the record cannot be written; nothing of the
    ///   group is applied then.
    func writeToLog(_ operations: consuming [LoggedOperation], in core: inout Core, syncs: Bool) throws(ConveyorError) -> LoggedGroup? {
        var operations = operations
        let fold = syncs ? core.deliveryLog?.beginFold() : nil
        if let fold {
            // As a write transaction does, a count the group sets wins over one logged before it;
            // and a count for a reference the group removes (a consumer's acknowledgement of what
            // it was just delivered, mostly) would change nothing. Both lists sorted, one walk.
            var settled: [DeliveryLog.Key] = []
            settled.reserveCapacity(operations.count)
            for operation in operations {
                switch operation {
                case .remove(let sequence, let destination), .setDeliveryCount(let sequence, let destination, _):
                    settled.append(DeliveryLog.Key(destination: destination, sequence: sequence))
                default:
                    continue
                }
            }
            settled.sort()
            var next = 0
            for entry in fold.entries {
                while next < settled.count, settled[next] < entry.key { next += 1 }
                if next < settled.count, settled[next] == entry.key { continue }
                operations.append(.raiseDeliveryCount(
                    sequence: entry.key.sequence, destination: entry.key.destination, count: entry.count))
            }
            operations.append(.foldedDeliveries(generation: fold.generation))
        }
        guard !operations.isEmpty, let record = try core.commitLog?.write(operations) else { return nil }
        if syncs { CommitLog.startWriteback(record) }
        core.commitLog?.count(record)
        for operation in operations { core.pending.apply(operation) }
        return LoggedGroup(record: record, fold: fold)
    }

    /// Syncs a group's record if `syncs`, without the store's lock (the caller holds `logWrites`),
    /// then finishes its fold of the delivery log and checkpoints when the log or the pending
    /// bodies have grown past ``Options/checkpointBytes``, or the pending references past
    /// ``CommitLog/checkpointReferences``.
    /// - Throws: ``ConveyorError/Code/storage`` if the sync fails; the store then stops writing
    ///   (``Core/syncFailure``).
    func finishLogging(_ group: LoggedGroup, syncs: Bool) throws(ConveyorError) {
        if syncs {
            do throws(ConveyorError) {
                try options.beforeCommitLogSync?()
                try CommitLog.sync(group.record)
            } catch {
                CommitLog.spoil(group.record)
                let failure = ConveyorError(
                    .storage, "\(error.message); the LMDB store at '\(directory)' stops writing until it is closed and opened again",
                    underlying: error)
                core.withLock { $0.syncFailure = failure }
                options.logger.error("a commit-log sync failed; the store stops writing until it is reopened",
                                     metadata: ["directory": "\(directory)", "error": "\(error)"])
                throw failure
            }
        }
        core.withLock { core in
            if let fold = group.fold { core.deliveryLog?.finishFold(fold) }
            let logSize = core.commitLog?.size ?? 0
            guard core.checkpointFailure == nil,
                  logSize >= options.checkpointBytes || core.pending.bodyBytes >= options.checkpointBytes
                    || core.pending.referenceCount >= CommitLog.checkpointReferences
            else { return }
            do throws(ConveyorError) {
                try Self.write([], in: &core, directory: directory)
            } catch {
                // The commits are safe in the log. The next commit that adds messages writes to the
                // database directly, checkpointing with it, and meets the failure if it lasts.
                core.checkpointFailure = error
                options.logger.warning("could not checkpoint the commit log into the database; commits adding messages now write to it directly",
                                       metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
        }
    }

    /// How many bytes of records the commit log holds and how many changes are pending (0 and
    /// `true` if the store does not log commits); for tests.
    func commitLogStateForTesting() -> (logBytes: Int, pendingIsEmpty: Bool) {
        core.withLock { ($0.commitLog?.size ?? 0, $0.pending.isEmpty) }
    }

    /// How many references and bodies the database holds (the pending changes aside); for tests.
    func databaseEntriesForTesting() throws(ConveyorError) -> (references: Int, bodies: Int) {
        try core.withLock { (core) throws(ConveyorError) in
            guard let environment = core.environment else { throw ConveyorError(.storage, "the store is closed") }
            let databases = environment.databases
            return try environment.read { (transaction) throws(any Error) in
                (try transaction.entryCount(databases.references), try transaction.entryCount(databases.bodies))
            }
        }
    }

    /// Writes what the commit log holds into the database now; for tests.
    func checkpointForTesting() throws(ConveyorError) {
        try logWrites.withLock { (_) throws(ConveyorError) in
            try core.withLock { (core) throws(ConveyorError) in try Self.write([], in: &core, directory: directory) }
        }
    }
}

extension LMDBTransaction {
    /// Whether the `metadata` database holds `name`.
    func hasMetadata(_ name: StaticString, in databases: LMDBDatabases) throws(LMDBError) -> Bool {
        try LMDBKey.with(name) { (key) throws(LMDBError) in try get(databases.metadata, key) } != nil
    }

    /// The last commit-log epoch stored as checkpointed (0 if none ever was).
    func checkpointedCommitEpoch(in databases: LMDBDatabases) throws(LMDBError) -> UInt64 {
        try metadataNumber(MetadataKey.checkpointedCommits, in: databases, else: "checkpointed commit epoch")
    }

    /// Stores the commit-log epoch whose records are in the database.
    func setCheckpointedCommitEpoch(_ epoch: UInt64, in databases: LMDBDatabases) throws(LMDBError) {
        try setMetadataNumber(MetadataKey.checkpointedCommits, epoch, in: databases)
    }
}
