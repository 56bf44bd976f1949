import CLMDB
import Conveyor
import Logging
import Synchronization

extension LMDBStore {
    /// Writes the delivery counts of messages about to be delivered so that they survive a crash
    /// of the process (see ``MessageStore/recordDeliveries(_:)``).
    ///
    /// If the store logs deliveries (``logsDeliveries``): appends them to its delivery log, a side file in
    /// the directory (`deliveries-a.log` or `deliveries-b.log`), with one `pwrite` and no sync and
    /// no LMDB transaction, so this never waits for a commit in progress. Reads see the counts at
    /// once. The next commit writes them into its commit-log record (or, going to the database
    /// directly, into its transaction), so they are safe from a power loss once it returns; a power loss before it may lose them (the messages
    /// then come back without the redelivered flag), nothing else. After a crash, ``open()`` reads
    /// the log and applies what it holds. A count recorded here only ever raises the stored one: the
    /// higher of the two wins. (Should the log grow past a few megabytes without any commit, this
    /// call folds it with a commit of its own.)
    ///
    /// Otherwise, and for a batch holding anything but delivery counts: commits the batch syncing
    /// the data pages but not the meta page (`MDB_NOMETASYNC` for that transaction; OS-buffered,
    /// an ordinary commit, which syncs nothing), so it survives a crash of the process at once and
    /// a power loss from the next durable commit on, and a power loss before it rolls the store
    /// back to the previous commit, undamaged.
    /// - Parameter batch: Delivery-count updates.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or the write fails (nothing
    ///   of the batch is recorded then).
    public func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError) {
        guard logsDeliveries, batch.operations.allSatisfy(\.isDeliveryCount) else {
            try commit(batch, needsSync: false)
            return
        }
        guard let logSize = try deliveryLog.append(batch) else { throw closedError() }
        if logSize >= DeliveryLog.foldThreshold {
            // No commit folded the log for a long while: fold it now. The counts are logged
            // whatever happens here, and a failure leaves them for the next commit.
            do throws(ConveyorError) {
                try commit(StoreBatch(), needsSync: true)
            } catch {
                options.logger.warning("could not fold the delivery log; the next commit tries again",
                                       metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
        }
    }

    /// Whether ``recordDeliveries(_:)`` writes to the delivery log rather than committing: with
    /// ``Sharing/singleProcess`` (processes sharing a store must find the counts in the database)
    /// in ``Durability/sync`` and ``Durability/groupCommit`` modes. An OS-buffered commit syncs
    /// nothing, so the log would save no sync there, and measured slower than the commit (W3 −9 %):
    /// it costs the fold's bookkeeping on every commit.
    ///
    /// Whatever the mode, ``open()`` applies the counts a delivery log in the directory holds (left
    /// by a single-process store that did not close), and a store that does not log removes the files.
    var logsDeliveries: Bool {
        options.sharing == .singleProcess && options.durability != .osBuffered
    }

    /// Applies what the delivery log files of a directory hold beyond the folded generation (what
    /// a store that was not closed left) to the references that still exist, in one write
    /// transaction that also stores their generation as folded. The files themselves are left as
    /// they are: once this returns they can be emptied.
    /// - Returns: The folded generation now stored.
    static func recoverDeliveryLog(_ environment: LMDBEnvironment, directory path: String) throws(ConveyorError) -> UInt64 {
        let databases = environment.databases
        let folded = try environment.read { (transaction) throws(any Error) -> UInt64 in
            try transaction.foldedDeliveryGeneration(in: databases)
        }
        let logged = try DeliveryLog.logged(in: path, after: folded)
        guard logged.highestGeneration > folded else { return folded }
        let entries = logged.counts.map { (key: $0.key, count: $0.value) }.sorted { $0.key < $1.key }
        try environment.write(action: "recover the delivery counts of") { (transaction) throws(LMDBError) in
            try transaction.raiseDeliveryCounts(entries, skipping: [], in: databases)
            try transaction.setFoldedDeliveryGeneration(logged.highestGeneration, in: databases)
        }
        return logged.highestGeneration
    }

    /// The references whose delivery count `batches` set: a fold in the same transaction leaves
    /// them alone, so that an ordinary commit of a count wins over a count logged before it.
    static func countsSet(by batches: [EncodedBatch], destinations: [StoreQueueKey: UInt64]) -> Set<DeliveryLog.Key> {
        var keys = Set<DeliveryLog.Key>()
        for batch in batches {
            for case .setDeliveryCount(let sequence, let queue, _) in batch.batch.operations {
                // A queue without an ID holds no references, so no logged count either.
                guard let id = destinations[queue] else { continue }
                keys.insert(DeliveryLog.Key(destination: id, sequence: sequence))
            }
        }
        return keys
    }

    /// The ID of the last committed LMDB write transaction; for tests.
    func lastTransactionIDForTesting() -> Int? {
        core.withLock { $0.environment?.lastTransactionID }
    }
}

extension StoreOperation {
    /// Whether this is a ``StoreOperation/setDeliveryCount(sequence:in:count:)``.
    var isDeliveryCount: Bool {
        if case .setDeliveryCount = self { true } else { false }
    }
}

extension LMDBTransaction {
    /// Changes the delivery count of an existing reference; a missing reference stays missing (a
    /// count never creates one).
    /// - Parameters:
    ///   - key: The reference.
    ///   - databases: The store's databases.
    ///   - newCount: Given the stored count, the count to store, or `nil` to leave it.
    func updateDeliveryCount(
        of key: DeliveryLog.Key, in databases: LMDBDatabases, _ newCount: (UInt32) -> UInt32?
    ) throws(LMDBError) {
        try LMDBKey.with(destination: key.destination, sequence: key.sequence) { (rawKey) throws(LMDBError) in
            guard let raw = try get(databases.references, rawKey) else { return }
            guard var value = ReferenceValue.read(raw) else { throw .corrupted("message reference") }
            guard let count = newCount(value.deliveryCount) else { return }
            value.deliveryCount = count
            try value.withBytes { (bytes) throws(LMDBError) in
                try put(databases.references, rawKey, bytes)
            }
        }
    }

    /// Raises the delivery counts of existing references to logged ones (a fold of the
    /// ``DeliveryLog``); a count is never lowered, and references in `skipping` are left alone.
    func raiseDeliveryCounts(
        _ entries: [(key: DeliveryLog.Key, count: UInt32)], skipping: Set<DeliveryLog.Key>, in databases: LMDBDatabases
    ) throws(LMDBError) {
        for entry in entries where !skipping.contains(entry.key) {
            try updateDeliveryCount(of: entry.key, in: databases) { $0 < entry.count ? entry.count : nil }
        }
    }

    /// The delivery log generation stored as folded (0 if none ever was).
    func foldedDeliveryGeneration(in databases: LMDBDatabases) throws(LMDBError) -> UInt64 {
        try metadataNumber(MetadataKey.foldedDeliveries, in: databases, else: "folded delivery generation")
    }

    /// Stores the delivery log generation whose records (and older ones) are in the database.
    func setFoldedDeliveryGeneration(_ generation: UInt64, in databases: LMDBDatabases) throws(LMDBError) {
        try setMetadataNumber(MetadataKey.foldedDeliveries, generation, in: databases)
    }

    /// A number kept in the `metadata` database (0 if absent).
    /// - Throws: ``LMDBError/corrupted(_:_:)`` naming `what` if the stored value is not 8 bytes.
    func metadataNumber(_ name: StaticString, in databases: LMDBDatabases, else what: StaticString) throws(LMDBError) -> UInt64 {
        let raw = try LMDBKey.with(name) { (key) throws(LMDBError) in try get(databases.metadata, key) }
        guard let raw else { return 0 }
        guard let value = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted(what) }
        return value
    }

    /// Stores a number in the `metadata` database.
    func setMetadataNumber(_ name: StaticString, _ value: UInt64, in databases: LMDBDatabases) throws(LMDBError) {
        try LMDBKey.with(name) { (key) throws(LMDBError) in
            try LMDBValue.with(value) { (bytes) throws(LMDBError) in
                try put(databases.metadata, key, bytes)
            }
        }
    }
}
