import CLMDB
import Conveyor

extension LMDBStore {
    /// What ``LMDBStore/open()`` reads: the recovery for the broker and the destination IDs the
    /// store needs for later commits.
    struct Snapshot {
        var recovery: StoreRecovery
        var destinations: [StoreQueueKey: UInt64]
        var lastDestinationID: UInt64
    }

    /// Reads what the store holds in one read transaction (one consistent snapshot): subscriptions,
    /// destination IDs, and each queue's size from its references. No body is read: a broker pages
    /// them in with ``LMDBStore/messages(in:after:limit:)``.
    static func readSnapshot(_ environment: LMDBEnvironment) throws(ConveyorError) -> Snapshot {
        let databases = environment.databases
        return try environment.read { (transaction) throws(any Error) -> Snapshot in
            try SnapshotReader(transaction: transaction, databases: databases).read()
        }
    }

    /// Reads up to `limit` references of one destination above `sequence`, in key (sequence) order,
    /// with their bodies, in one read transaction.
    /// - Parameters:
    ///   - unlocked: Whether the caller runs it without the store's lock, having called
    ///     ``LMDBEnvironment/beginUnlockedRead()``; the read then returns `nil` instead of adopting
    ///     a map another process grew.
    ///   - whileReading: Called in the transaction before it reads (a test hook).
    static func readPage(
        _ environment: LMDBEnvironment, destination: UInt64, after sequence: UInt64, limit: Int, unlocked: Bool = false,
        whileReading: (@Sendable () -> Void)? = nil
    ) throws(ConveyorError) -> [RecoveredMessage]? {
        let databases = environment.databases
        let read = { (transaction: LMDBTransaction) throws(any Error) -> [RecoveredMessage] in
            whileReading?()
            var page: [RecoveredMessage] = []
            page.reserveCapacity(min(limit, 4096))
            guard limit > 0, sequence < .max else { return page }
            let reader = SnapshotReader(transaction: transaction, databases: databases)
            try transaction.withCursor(databases.references) { (cursor) throws(LMDBError) in
                var entry = try LMDBKey.with(destination: destination, sequence: sequence + 1) { (key) throws(LMDBError) in
                    try cursor.seek(atLeast: key)
                }
                while page.count < limit, let item = entry {
                    guard let reference = LMDBKey.reference(item.key) else { throw .corrupted("message reference") }
                    guard reference.destination == destination else { break }
                    guard let value = ReferenceValue.read(item.value) else { throw .corrupted("message reference") }
                    page.append(RecoveredMessage(
                        sequence: reference.sequence, message: try reader.body(reference.sequence),
                        deliveryCount: Int(value.deliveryCount)))
                    entry = try cursor.next()
                }
            }
            return page
        }
        return unlocked ? try environment.readUnlocked(read) : try environment.read(read)
    }
}

/// Reads a snapshot inside one read transaction; see ``LMDBStore/readSnapshot(_:)``.
struct SnapshotReader {
    let transaction: LMDBTransaction
    let databases: LMDBDatabases

    func read() throws -> LMDBStore.Snapshot {
        let highest = try highestSequence()
        let (keysByID, lastDestinationID) = try destinations()
        let subscriptions = try subscriptionRecords()
        var queues: [StoreQueueKey: StoredQueueSummary] = [:]
        for (id, summary) in try summaries() {
            guard let key = keysByID[id] else {
                throw ConveyorError(.storage, "the store holds references for destination ID \(id), which it does not name")
            }
            queues[key] = summary
        }
        var destinations: [StoreQueueKey: UInt64] = [:]
        destinations.reserveCapacity(keysByID.count)
        for (id, key) in keysByID { destinations[key] = id }
        return LMDBStore.Snapshot(
            recovery: StoreRecovery(subscriptions: subscriptions, queues: queues, highestSequence: highest),
            destinations: destinations, lastDestinationID: lastDestinationID)
    }

    private func highestSequence() throws(LMDBError) -> UInt64 {
        let raw = try LMDBKey.with(MetadataKey.highestSequence) { (key) throws(LMDBError) in
            try transaction.get(databases.metadata, key)
        }
        guard let raw else { return 0 }
        guard let value = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted("highest sequence") }
        return value
    }

    /// Every entry of a database, copied out of the map.
    private func entries(_ database: MDB_dbi) throws(LMDBError) -> [(key: [UInt8], value: [UInt8])] {
        try transaction.withCursor(database) { (cursor) throws(LMDBError) in
            var result: [(key: [UInt8], value: [UInt8])] = []
            var entry = try cursor.first()
            while let current = entry {
                result.append((Array(current.key), Array(current.value)))
                entry = try cursor.next()
            }
            return result
        }
    }

    private func destinations() throws -> ([UInt64: StoreQueueKey], UInt64) {
        var keysByID: [UInt64: StoreQueueKey] = [:]
        var last: UInt64 = 0
        for entry in try entries(databases.destinations) {
            guard let id = entry.key.withBytes({ LMDBKey.number($0) }) else { throw LMDBError.corrupted("destination ID") }
            keysByID[id] = try MessageCodec.decodeQueueKey(entry.value)
            last = max(last, id)
        }
        return (keysByID, last)
    }

    func subscriptionRecords() throws -> [SubscriptionRecord] {
        var records: [SubscriptionRecord] = []
        for entry in try entries(databases.subscriptions) {
            records.append(try MessageCodec.decodeSubscription(entry.value))
        }
        return records
    }

    /// How many references each destination holds and their body bytes: one walk over the
    /// references (small fixed-size entries), never touching a body.
    private func summaries() throws(LMDBError) -> [UInt64: StoredQueueSummary] {
        try transaction.withCursor(databases.references) { (cursor) throws(LMDBError) in
            var result: [UInt64: StoredQueueSummary] = [:]
            var currentID: UInt64?
            var current = StoredQueueSummary(count: 0, bytes: 0)
            var entry = try cursor.first()
            while let item = entry {
                guard let reference = LMDBKey.reference(item.key), let value = ReferenceValue.read(item.value)
                else { throw .corrupted("message reference") }
                if reference.destination != currentID {
                    if let id = currentID { result[id] = current }
                    currentID = reference.destination
                    current = StoredQueueSummary(count: 0, bytes: 0)
                }
                current.count += 1
                current.bytes += Int(value.bodyBytes)
                entry = try cursor.next()
            }
            if let id = currentID { result[id] = current }
            return result
        }
    }

    /// Reads and decodes one body. A decoding failure is reported as corrupt data (LMDB's
    /// `MDB_CORRUPTED`), as is a reference whose body is missing.
    func body(_ sequence: UInt64) throws(LMDBError) -> Message {
        try LMDBKey.with(sequence) { (key) throws(LMDBError) -> Message in
            guard let raw = try transaction.get(databases.bodies, key) else {
                throw .corrupted("reading bodies", "message \(sequence) is referenced but its body is missing")
            }
            do throws(ConveyorError) {
                return try MessageCodec.decodeMessage(raw)
            } catch {
                throw .corrupted("decoding bodies", "message \(sequence): \(error.message)")
            }
        }
    }
}
