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

    /// Reads the whole store in one read transaction (one consistent snapshot).
    ///
    /// References are read queue by queue in sequence order (the key order), and each body is
    /// decoded once however many references it has. Everything is read for now; when the broker
    /// pages bodies (backlog on disk), this will return references and only the first bodies of
    /// each queue, and the broker will read the rest through the store as it goes.
    static func readSnapshot(_ environment: LMDBEnvironment) throws(ConveyorError) -> Snapshot {
        let databases = environment.databases
        return try environment.read { (transaction) throws(any Error) -> Snapshot in
            try SnapshotReader(transaction: transaction, databases: databases).read()
        }
    }
}

/// Reads a snapshot inside one read transaction; see ``LMDBStore/readSnapshot(_:)``.
private struct SnapshotReader {
    let transaction: LMDBTransaction
    let databases: LMDBDatabases

    func read() throws -> LMDBStore.Snapshot {
        let highest = try highestSequence()
        let (keysByID, lastDestinationID) = try destinations()
        let subscriptions = try subscriptionRecords()
        let messages = try references(keysByID: keysByID, shared: try sharedSequences())
        var destinations: [StoreQueueKey: UInt64] = [:]
        destinations.reserveCapacity(keysByID.count)
        for (id, key) in keysByID { destinations[key] = id }
        return LMDBStore.Snapshot(
            recovery: StoreRecovery(subscriptions: subscriptions, messages: messages, highestSequence: highest),
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

    private func subscriptionRecords() throws -> [SubscriptionRecord] {
        var records: [SubscriptionRecord] = []
        for entry in try entries(databases.subscriptions) {
            records.append(try MessageCodec.decodeSubscription(entry.value))
        }
        return records
    }

    /// The sequences of messages with more than one reference.
    private func sharedSequences() throws(LMDBError) -> Set<UInt64> {
        try transaction.withCursor(databases.refcounts) { (cursor) throws(LMDBError) in
            var result: Set<UInt64> = []
            var entry = try cursor.first()
            while let current = entry {
                guard let sequence = LMDBKey.number(current.key) else { throw .corrupted("reference count key") }
                result.insert(sequence)
                entry = try cursor.next()
            }
            return result
        }
    }

    /// Walks the references in key order (destination, then sequence) with their bodies.
    private func references(
        keysByID: [UInt64: StoreQueueKey], shared: Set<UInt64>
    ) throws -> [StoreQueueKey: [RecoveredMessage]] {
        var messages: [StoreQueueKey: [RecoveredMessage]] = [:]
        var decodedShared: [UInt64: Message] = [:]
        var currentID: UInt64?
        var current: [RecoveredMessage] = []

        func flush() throws(ConveyorError) {
            guard let id = currentID, !current.isEmpty else { return }
            guard let key = keysByID[id] else {
                throw ConveyorError(.storage, "the store holds references for destination ID \(id), which it does not name")
            }
            messages[key] = current
            current = []
        }

        try transaction.withCursor(databases.references) { (cursor) throws(LMDBError) in
            var entry = try cursor.first()
            while let item = entry {
                guard let reference = LMDBKey.reference(item.key),
                      let count = LMDBValue.read(item.value, as: UInt32.self)
                else { throw .corrupted("message reference") }
                if reference.destination != currentID {
                    // Flushing throws only for an unnamed destination: corrupt data.
                    do throws(ConveyorError) { try flush() } catch { throw .corrupted("reading references", error.message) }
                    currentID = reference.destination
                }
                let message: Message
                if shared.contains(reference.sequence), let decoded = decodedShared[reference.sequence] {
                    message = decoded
                } else {
                    message = try body(reference.sequence)
                    if shared.contains(reference.sequence) { decodedShared[reference.sequence] = message }
                }
                current.append(RecoveredMessage(sequence: reference.sequence, message: message, deliveryCount: Int(count)))
                entry = try cursor.next()
            }
        }
        try flush()
        return messages
    }

    /// Reads and decodes one body. A decoding failure is reported as corrupt data (LMDB's
    /// `MDB_CORRUPTED`), as is a reference whose body is missing.
    private func body(_ sequence: UInt64) throws(LMDBError) -> Message {
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
