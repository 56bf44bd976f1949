import CLMDB
import Conveyor

/// Applies store operations inside one LMDB write transaction.
///
/// One writer lives for one attempt at a write transaction: if LMDB must grow the map and run the
/// transaction again, a new writer starts from the committed state, so nothing it learned in the
/// failed attempt (new destination IDs) leaks out. The caller adopts ``newDestinations`` and
/// ``lastDestinationID`` only after the commit succeeded.
struct LMDBBatchWriter {
    private let transaction: LMDBTransaction
    private let databases: LMDBDatabases
    private let knownDestinations: [StoreQueueKey: UInt64]
    /// Destinations that received an ID in this transaction (or were found in the database).
    private(set) var newDestinations: [StoreQueueKey: UInt64] = [:]
    /// The highest destination ID known, committed or assigned here.
    private(set) var lastDestinationID: UInt64
    private var storedHighestSequence: UInt64?
    private var highestSequence: UInt64 = 0

    init(transaction: LMDBTransaction, databases: LMDBDatabases, knownDestinations: [StoreQueueKey: UInt64],
         lastDestinationID: UInt64) {
        self.transaction = transaction
        self.databases = databases
        self.knownDestinations = knownDestinations
        self.lastDestinationID = lastDestinationID
    }

    /// Applies every operation of `batch`, in order, writing the messages it adds as they were
    /// encoded.
    mutating func apply(_ batch: EncodedBatch) throws(LMDBError) {
        var messages = batch.messages.makeIterator()
        for operation in batch.batch.operations {
            // One encoding per addition, in order (see EncodedBatch).
            try apply(operation) { messages.next() ?? ArraySlice(MessageCodec.encode($0.message)) }
        }
    }

    /// Writes what is kept for the whole transaction (the highest sequence). Call once, last.
    mutating func finish() throws(LMDBError) {
        guard let stored = storedHighestSequence, highestSequence > stored else { return }
        try LMDBKey.with(MetadataKey.highestSequence) { (key) throws(LMDBError) in
            try LMDBValue.with(highestSequence) { (value) throws(LMDBError) in
                try transaction.put(databases.metadata, key, value)
            }
        }
    }

    /// Applies one operation; `encoding` gives the encoding of a message it adds.
    private mutating func apply(_ operation: StoreOperation, encoding: (StoredMessage) -> ArraySlice<UInt8>) throws(LMDBError) {
        switch operation {
        case .add(let stored):
            try add(stored, encoded: encoding(stored))
        case .remove(let sequence, let key):
            guard let destination = try destinationID(key, create: false) else { return }
            let removed = try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                try transaction.delete(databases.references, key)
            }
            if removed { try release(sequence) }
        case .setDeliveryCount(let sequence, let key, let count):
            guard let destination = try destinationID(key, create: false) else { return }
            let reference = DeliveryLog.Key(destination: destination, sequence: sequence)
            try transaction.updateDeliveryCount(of: reference, in: databases) { _ in UInt32(clamping: max(count, 0)) }
        case .saveSubscription(let record):
            guard let destination = try destinationID(.subscription(record.key), create: true) else { return }
            let encoded = MessageCodec.encode(record)
            try LMDBKey.with(destination) { (key) throws(LMDBError) in
                try encoded.withBytes { (value) throws(LMDBError) in
                    try transaction.put(databases.subscriptions, key, value)
                }
            }
        case .deleteSubscription(let subscription):
            guard let destination = try destinationID(.subscription(subscription), create: false) else { return }
            try LMDBKey.with(destination) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.subscriptions, key)
                // Its kept counters go with it: a subscription created again under the key starts at zero.
                _ = try transaction.delete(databases.statistics, key)
            }
            try purge(destination)
        case .purge(let key):
            guard let destination = try destinationID(key, create: false) else { return }
            try purge(destination)
        }
    }

    /// Writes the changes the commit log holds (``PendingChanges``): bodies in sequence order (so
    /// they append to the B-tree), then every pending reference. Call before the batches, which
    /// come after them in the log.
    mutating func apply(_ pending: PendingChanges) throws(LMDBError) {
        if pending.highestSequence > 0 { try noteSequence(pending.highestSequence) }
        // Removals first: the pages they free can hold the additions (the order of changes to
        // different references does not matter).
        let destinations = pending.references.map { ($0.key, $0.value.sorted()) }.sorted { $0.0 < $1.0 }
        // Through cursors, in key order (a drained backlog's checkpoint removes tens of thousands of
        // consecutive references and bodies); with no shared bodies (no reference counts), a
        // body goes with its reference without looking for a count.
        let sharesBodies = try transaction.entryCount(databases.refcounts) > 0
        try transaction.withCursor(databases.references) { (referenceCursor) throws(LMDBError) in
            try transaction.withCursor(databases.bodies) { (bodyCursor) throws(LMDBError) in
                for (destination, references) in destinations {
                    for (sequence, state) in references where state == .removed {
                        let removed = try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                            try referenceCursor.delete(key)
                        }
                        guard removed else { continue }
                        if sharesBodies {
                            try release(sequence)
                        } else {
                            _ = try LMDBKey.with(sequence) { (key) throws(LMDBError) in try bodyCursor.delete(key) }
                        }
                    }
                }
            }
        }
        for (sequence, body) in pending.bodies.sorted(by: { $0.key < $1.key }) {
            try LMDBKey.with(sequence) { (key) throws(LMDBError) in
                try body.encoded.withBytes { (value) throws(LMDBError) in
                    try transaction.putMostlyAppending(databases.bodies, key, value)
                }
                if body.references > 1 {
                    try LMDBValue.with(UInt32(clamping: body.references)) { (value) throws(LMDBError) in
                        try transaction.put(databases.refcounts, key, value)
                    }
                }
            }
        }
        for (destination, references) in destinations {
            for (sequence, state) in references {
                let reference = DeliveryLog.Key(destination: destination, sequence: sequence)
                switch state {
                case .added(let count):
                    guard let body = pending.bodies[sequence] else { throw .corrupted("pending reference without its body") }
                    let value = ReferenceValue(deliveryCount: count, bodyBytes: UInt32(clamping: body.message.body.byteCount))
                    try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                        try value.withBytes { (bytes) throws(LMDBError) in
                            try transaction.putMostlyAppending(databases.references, key, bytes)
                        }
                    }
                case .removed:
                    continue    // above
                case .set(let count):
                    try transaction.updateDeliveryCount(of: reference, in: databases) { _ in count }
                case .raised(let count):
                    try transaction.updateDeliveryCount(of: reference, in: databases) { $0 < count ? count : nil }
                }
            }
        }
    }

    // MARK: Messages

    private mutating func add(_ stored: StoredMessage, encoded: ArraySlice<UInt8>) throws(LMDBError) {
        try noteSequence(stored.sequence)
        // A message listed twice for one queue still has one reference there.
        var destinations: [UInt64] = []
        destinations.reserveCapacity(stored.targets.count)
        for target in stored.targets {
            guard let destination = try destinationID(target, create: true) else { continue }
            if !destinations.contains(destination) { destinations.append(destination) }
        }
        guard !destinations.isEmpty else { return }    // nobody would ever release it

        try LMDBKey.with(stored.sequence) { (key) throws(LMDBError) in
            try encoded.withBytes { (value) throws(LMDBError) in
                try transaction.putMostlyAppending(databases.bodies, key, value)
            }
            if destinations.count > 1 {
                try LMDBValue.with(UInt32(clamping: destinations.count)) { (value) throws(LMDBError) in
                    try transaction.put(databases.refcounts, key, value)
                }
            }
        }
        let reference = ReferenceValue(deliveryCount: 0, bodyBytes: UInt32(clamping: stored.message.body.byteCount))
        for destination in destinations {
            try LMDBKey.with(destination: destination, sequence: stored.sequence) { (key) throws(LMDBError) in
                try reference.withBytes { (value) throws(LMDBError) in
                    try transaction.putMostlyAppending(databases.references, key, value)
                }
            }
        }
    }

    /// Drops one reference to `sequence`; the body goes with the last one.
    private func release(_ sequence: UInt64) throws(LMDBError) {
        try LMDBKey.with(sequence) { (key) throws(LMDBError) in
            if let raw = try transaction.get(databases.refcounts, key) {
                guard let count = LMDBValue.read(raw, as: UInt32.self) else { throw .corrupted("reference count") }
                if count > 2 {
                    try LMDBValue.with(count - 1) { (value) throws(LMDBError) in
                        try transaction.put(databases.refcounts, key, value)
                    }
                } else {
                    try transaction.delete(databases.refcounts, key)    // one reference left: no entry
                }
            } else {
                try transaction.delete(databases.bodies, key)
            }
        }
    }

    /// Removes every reference a destination holds: one contiguous key range.
    private func purge(_ destination: UInt64) throws(LMDBError) {
        var sequences: [UInt64] = []
        try transaction.withCursor(databases.references) { (cursor) throws(LMDBError) in
            var entry = try LMDBKey.with(destination: destination, sequence: 0) { (key) throws(LMDBError) in
                try cursor.seek(atLeast: key)
            }
            while let current = entry, let reference = LMDBKey.reference(current.key), reference.destination == destination {
                sequences.append(reference.sequence)
                entry = try cursor.next()
            }
        }
        for sequence in sequences {
            try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.references, key)
            }
            try release(sequence)
        }
    }

    private mutating func noteSequence(_ sequence: UInt64) throws(LMDBError) {
        if storedHighestSequence == nil {
            let stored = try LMDBKey.with(MetadataKey.highestSequence) { (key) throws(LMDBError) in
                try transaction.get(databases.metadata, key)
                    .map { (raw) throws(LMDBError) in
                        guard let value = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted("highest sequence") }
                        return value
                    }
            }
            storedHighestSequence = stored ?? 0
            highestSequence = stored ?? 0
        }
        highestSequence = max(highestSequence, sequence)
    }

    // MARK: Destinations

    /// The ID of a queue or subscription; with `create`, assigns the next one if it has none.
    private mutating func destinationID(_ key: StoreQueueKey, create: Bool) throws(LMDBError) -> UInt64? {
        if let id = knownDestinations[key] ?? newDestinations[key] { return id }
        // Not known here: another process sharing the directory may have added it (a later issue
        // makes that possible), so read what the database holds beyond the last ID we know.
        try loadDestinations()
        if let id = newDestinations[key] { return id }
        guard create else { return nil }
        let id = lastDestinationID + 1
        let encoded = MessageCodec.encode(key)
        try LMDBKey.with(id) { (idKey) throws(LMDBError) in
            try encoded.withBytes { (value) throws(LMDBError) in
                try transaction.put(databases.destinations, idKey, value)
            }
        }
        newDestinations[key] = id
        lastDestinationID = id
        return id
    }

    private mutating func loadDestinations() throws(LMDBError) {
        let last = try transaction.withCursor(databases.destinations) { (cursor) throws(LMDBError) -> UInt64 in
            guard let entry = try cursor.last() else { return 0 }
            guard let id = LMDBKey.number(entry.key) else { throw .corrupted("destination ID") }
            return id
        }
        guard last > lastDestinationID else { return }
        let found = try transaction.destinations(after: lastDestinationID, in: databases.destinations)
        for (key, id) in found { newDestinations[key] = id }
        lastDestinationID = last
    }
}

extension LMDBTransaction {
    /// The queues and subscriptions with destination IDs above `id`, in ID order (those another
    /// process sharing the directory, or a later transaction, added).
    func destinations(after id: UInt64, in database: MDB_dbi) throws(LMDBError) -> [(StoreQueueKey, UInt64)] {
        try withCursor(database) { (cursor) throws(LMDBError) -> [(StoreQueueKey, UInt64)] in
            var found: [(StoreQueueKey, UInt64)] = []
            var entry = try LMDBKey.with(id + 1) { (key) throws(LMDBError) in try cursor.seek(atLeast: key) }
            while let current = entry {
                guard let id = LMDBKey.number(current.key) else { throw .corrupted("destination ID") }
                do throws(ConveyorError) {
                    found.append((try MessageCodec.decodeQueueKey(current.value), id))
                } catch {
                    throw .corrupted("destination key")
                }
                entry = try cursor.next()
            }
            return found
        }
    }
}
