import Dispatch
import Foundation
import Synchronization

/// A persistent store on an append-only, segmented journal: the engine to read to see how brokers
/// persist (Kafka's segments, RocketMQ's commit log, ActiveMQ's KahaDB journal).
///
/// ```swift
/// let broker = try Broker(store: FileStore(directory: "data"))
/// ```
///
/// Every ``commit(_:)`` appends one record to the active segment file (`segment-<n>.journal`) —
/// the whole batch, framed with its length and a CRC-32, so it is all or nothing on recovery — and,
/// in the default ``Durability/sync`` mode, syncs it before returning. An in-memory index (where
/// each live body is, which queues reference it in sequence order with what delivery counts, the
/// subscriptions) is rebuilt on ``open()`` by scanning the journal, or loaded from the snapshot a
/// clean ``close()`` writes. Bodies stay on disk — the index holds a few dozen bytes per message —
/// and are read a page at a time by ``messages(in:after:limit:)``, so a backlog larger than memory
/// stays on disk.
///
/// Recovery truncates a record torn by a crash at the end of the last segment, and refuses to
/// open — with a ``ConveyorError/Code/storage`` error naming the file and offset — when a record
/// in the middle is damaged: committed data is never skipped silently.
///
/// Compaction reclaims old segments once acknowledgements leave them mostly dead, by copying the
/// few live messages forward into the active segment and deleting the old file; it runs in the
/// background (see ``Options/compactsAutomatically``) one segment at a time, or on demand with
/// ``compact()``.
///
/// One directory is open in one `FileStore` at a time: a `LOCK` file held with `flock` refuses a
/// second store, in this process or another, with an error naming the holder's process ID.
public final class FileStore: MessageStore {
    /// The directory holding the journal, as given.
    public let directory: String
    /// The options the store was created with.
    public let options: Options

    struct Core {
        var isOpen = false
        /// The canonical directory path while open.
        var path = ""
        var lock: DirectoryLock?
        /// The journal's segments, oldest first; the last is the active one.
        var segments: [JournalSegment] = []
        var index = JournalIndex()
        /// A reusable buffer for encoding records.
        var writer = JournalWriter()
        /// A write or sync failed and left the journal in doubt; every later commit fails with it.
        var failure: ConveyorError?
        /// A background compaction is queued or running.
        var compactionScheduled = false
    }

    let core = Mutex(Core())
    /// Held by a durable write from its append until the index has it, and by compaction and
    /// ``close()``: see ``writeDurably(_:)``. Taken before ``core``, never inside it.
    let durableWrites = Mutex(())
    private let group: GroupCommit<EncodedBatch>
    let compactionQueue = DispatchQueue(label: "conveyor.file-store.compaction", qos: .utility)

    /// Creates a store on a directory; nothing is touched until ``open()``.
    /// - Parameters:
    ///   - directory: The directory for the journal; created (with its parents) if missing.
    ///   - options: Durability, segment size and compaction; see ``Options``.
    public init(directory: String, options: Options = .init()) {
        self.directory = directory
        self.options = options
        self.group = GroupCommit(for: options.durability)
    }

    /// Creates a store on a directory given as a file URL; nothing is touched until ``open()``.
    /// - Parameters:
    ///   - directory: A file URL of the directory for the journal; created if missing.
    ///   - options: Durability, segment size and compaction; see ``Options``.
    public convenience init(directory: URL, options: Options = .init()) {
        self.init(directory: directory.path(percentEncoded: false), options: options)
    }

    deinit { close() }

    /// `"file"`.
    public var name: String { "file" }

    /// `true`: commits write to files and, in the durable modes, sync them.
    public var commitMayBlock: Bool { true }

    /// `false`: ``recordDeliveries(_:)`` is one append with no sync. It takes the store's lock, which
    /// a sync holds only when a segment fills up or a compaction step runs, as page reads do.
    public var recordingDeliveriesMayBlock: Bool { false }

    /// `true`: bodies stay on disk until ``messages(in:after:limit:)`` reads them.
    public var pagesMessages: Bool { true }

    /// Opens the directory (creating it if needed), takes its lock, and builds the index from the
    /// snapshot of a clean close or by scanning the journal. Reads no message body.
    /// - Returns: The subscriptions, how many references each queue and subscription holds (with
    ///   their encoded body bytes), and the highest sequence ever stored.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is already open (here or in another
    ///   store object or process), if the directory cannot be used, or if the journal is damaged
    ///   anywhere but in a torn last write; the message names the file and offset.
    public func open() throws(ConveyorError) -> StoreRecovery {
        try core.withLock { (core) throws(ConveyorError) -> StoreRecovery in
            if core.isOpen {
                throw ConveyorError(.storage, "the file store at '\(core.path)' is already open; close its broker first")
            }
            let path = try Self.prepareDirectory(directory)
            let lock = try DirectoryLock.acquire(path)
            do throws(ConveyorError) {
                let loaded = try JournalLoader(directory: path, preallocation: preallocation).load()
                core.path = path
                core.lock = lock
                core.segments = loaded.segments.map { segment in
                    var segment = segment
                    segment.preallocation = preallocation
                    return segment
                }
                core.index = loaded.index
                core.failure = nil
                core.isOpen = true
                return core.index.summary()
            } catch {
                lock.release()
                throw error
            }
        }
    }

    /// Reads a page of the references a queue or subscription holds above `sequence`, ascending,
    /// with their messages and delivery counts.
    ///
    /// The index lookup and the body reads run under the store's lock, so a page is one consistent
    /// state while commits and compaction run on other threads; neighbouring bodies are read with
    /// one `pread`, and decoded after the lock is released.
    /// - Parameters:
    ///   - queue: The queue or subscription; one the store does not know has no references.
    ///   - sequence: Only references above this sequence number (0 for all).
    ///   - limit: The most references to return.
    /// - Returns: At most `limit` references; fewer means there are no more.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed, or a body cannot be read
    ///   or decoded (the message names the file and offset).
    public func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
        let page = try core.withLock { (core) throws(ConveyorError) -> BodyPage in
            guard core.isOpen else {
                throw ConveyorError(.storage, "the file store at '\(directory)' is closed; open a broker on it first")
            }
            return try BodyPage.read(core.index.page(of: queue, after: sequence, limit: limit), from: core.segments)
        }
        return try page.decode()
    }

    /// Appends the batch to the journal as one record.
    ///
    /// Blocks the calling thread for the write and, in the durable modes, the sync; the broker
    /// calls it off Swift's cooperative pool (``commitMayBlock``).
    /// - Parameter batch: The changes, applied in order, all or nothing.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or the write or sync fails
    ///   (a full disk, an I/O error); nothing of the batch is applied then.
    public func commit(_ batch: StoreBatch) throws(ConveyorError) {
        // Encoded here, on the committer's thread, not by the group's leader (see EncodedBatch).
        let encoded = EncodedBatch(batch)
        if options.durability != .osBuffered, !batch.isEmpty {
            try group.commit(encoded) { batches, _ in
                // One append and one sync for the whole group: it succeeds or fails as a whole.
                let result = Result { () throws(ConveyorError) in try writeDurably(batches) }
                return Array(repeating: result, count: batches.count)
            }
            return
        }
        try core.withLock { (core) throws(ConveyorError) in
            try write([encoded], in: &core, sync: false)
        }
    }

    /// Hands the batch to a group commit whose leader waits for one more committer (see
    /// ``MessageStore/commitWithoutBlocking(_:completion:)``); in the durable modes only.
    public func commitWithoutBlocking(_ batch: StoreBatch, completion: @escaping @Sendable (Result<Void, ConveyorError>) -> Void) -> Bool {
        guard options.durability != .osBuffered, !batch.isEmpty, group.awaitsOneMore else { return false }
        return group.handOff(EncodedBatch(batch), completion: completion)
    }

    /// Appends the delivery counts to the journal without a sync: the write reaches the operating
    /// system before this returns (so a crash of the process keeps it), and the next durable commit's
    /// sync, which flushes everything written before it, makes it safe from a power loss. A power
    /// loss before then leaves it at the journal's tail, where recovery treats it like any torn write.
    /// - Parameter batch: Delivery-count updates.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or the write fails.
    public func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError) {
        try core.withLock { (core) throws(ConveyorError) in
            try write([EncodedBatch(batch)], in: &core, sync: false)
        }
    }

    /// Syncs the journal, writes the index snapshot that lets the next ``open()`` skip the scan,
    /// and releases the files and the lock. The store can be opened again afterwards; closing a
    /// closed store does nothing.
    public func close() {
        durableWrites.withLock { _ in closeFiles() }
    }

    private func closeFiles() {
        core.withLock { core in
            guard core.isOpen else { return }
            if core.failure == nil, var active = core.segments.popLast() {
                let flushed = (try? active.trimPreallocation()) != nil && (try? active.sync()) != nil
                core.segments.append(active)
                if flushed { IndexSnapshot.write(core.index, segments: core.segments, directory: core.path) }
            }
            for segment in core.segments { segment.close() }
            core.lock?.release()
            core = Core()
        }
    }

    // MARK: Writing

    /// How far ahead of its records the active segment is filled with zeros: 4 MiB, or a sixteenth
    /// of the segment size for small segments.
    private var preallocation: UInt64 { UInt64(min(4 << 20, options.segmentSize / 16)) }

    /// Appends the batches as one write and syncs it without holding the store's lock, so that
    /// page reads and delivery records go on during the sync.
    ///
    /// The disk starts writing the records at once (``FileStoreIO/startWriteback(_:offset:length:)``)
    /// and the index takes them in meanwhile, before the sync rather than after it, which takes that
    /// work off the time every committer of the group waits. A page read during the sync may so
    /// return a message whose send is still committing: the broker does not add those twice (see
    /// `MessageQueue.beginTransit`). If the sync fails, the records' fate is unknown and the index
    /// has them: the store stops (every later write fails) until it is reopened, and the records
    /// are spoiled so that the reopen does not apply them.
    ///
    /// `durableWrites` keeps compaction out until the index has them: a compaction record written
    /// between this append and the index update could otherwise copy forward a message this group
    /// removes, after the removal, and bring it back on recovery.
    private func writeDurably(_ batches: [EncodedBatch]) throws(ConveyorError) {
        try durableWrites.withLock { (_) throws(ConveyorError) in
            let appended = try core.withLock { (core) throws(ConveyorError) -> AppendedRecords? in
                guard let appended = try append(batches, in: &core) else { return nil }
                FileStoreIO.startWriteback(
                    appended.segment.descriptor, offset: Int(appended.groupStart),
                    length: Int(appended.segment.size - appended.groupStart))
                apply(appended, to: &core)
                return appended
            }
            guard let appended else { return }
            do throws(ConveyorError) {
                try options.beforeJournalSync?()
                try appended.segment.sync()
            } catch {
                // The records' fate is unknown after a failed sync, and the index has them: stop.
                // Their first header is zeroed (if that write still works), so that a reopen cuts
                // them off as a torn tail instead of applying a commit reported failed.
                let zeros = [UInt8](repeating: 0, count: JournalRecord.headerSize)
                _ = zeros.withUnsafeBytes { FileStoreIO.writeAll(appended.segment.descriptor, $0, at: appended.groupStart) }
                core.withLock { $0.failure = error }
                throw error
            }
        }
    }

    /// Appends the batches as one write (one record per batch), syncs if asked, then applies them
    /// to the index.
    func write(_ batches: [EncodedBatch], in core: inout Core, sync: Bool) throws(ConveyorError) {
        guard let appended = try append(batches, in: &core) else { return }
        if sync {
            do throws(ConveyorError) {
                try appended.segment.sync()
            } catch {
                core.failure = error
                throw error
            }
        }
        apply(appended, to: &core)
    }

    /// What ``append(_:in:)`` wrote, to apply to the index once it is safe to.
    struct AppendedRecords {
        let batches: [EncodedBatch]
        /// The segment written to (a copy sharing its file descriptor, for the sync).
        let segment: JournalSegment
        let groupStart: UInt64
        let bodies: [(start: Int, length: Int)]
        let releases: Bool
    }

    /// Encodes the batches and appends them to the active segment, without syncing or touching the
    /// index's references; `nil` if there was nothing to write.
    private func append(_ batches: [EncodedBatch], in core: inout Core) throws(ConveyorError) -> AppendedRecords? {
        guard core.isOpen else {
            throw ConveyorError(.storage, "the file store at '\(directory)' is closed; open a broker on it first")
        }
        if let failure = core.failure { throw failure }
        guard batches.contains(where: { !$0.batch.isEmpty }) else { return nil }
        try rollSegmentIfFull(&core)
        guard var active = core.segments.popLast() else {
            throw ConveyorError(.storage, "the file store at '\(directory)' has no journal segment")
        }
        defer { core.segments.append(active) }
        let groupStart = active.size
        var writer = core.writer
        core.writer = JournalWriter()
        writer.buffer.removeAll(keepingCapacity: true)
        var bodies: [(start: Int, length: Int)] = []
        var releases = false
        for batch in batches where !batch.batch.isEmpty {
            releases = Self.encode(batch, groupStart: groupStart, into: &writer, index: &core.index, bodies: &bodies) || releases
        }
        do throws(ConveyorError) {
            // A failed write is cut back, leaving the journal as it was.
            try active.append(writer.buffer)
        } catch {
            if writer.buffer.count > 1 << 20 { writer = JournalWriter() }
            core.writer = writer
            throw error
        }
        if writer.buffer.capacity > 4 << 20 { writer = JournalWriter() }
        core.writer = writer
        return AppendedRecords(batches: batches, segment: active, groupStart: groupStart, bodies: bodies, releases: releases)
    }

    /// Applies appended batches to the index.
    private func apply(_ appended: AppendedRecords, to core: inout Core) {
        var nextBody = 0
        for batch in appended.batches {
            for operation in batch.batch.operations {
                Self.apply(operation, to: &core.index) { () -> BodyLocation in
                    let body = appended.bodies[nextBody]
                    nextBody += 1
                    return BodyLocation(
                        segment: appended.segment.number, length: UInt32(truncatingIfNeeded: body.length),
                        offset: appended.groupStart + UInt64(body.start))
                }
            }
        }
        if appended.releases, options.compactsAutomatically { scheduleCompactionIfWorthwhile(&core) }
    }

    /// Starts a new segment when the active one has reached the segment size. The old one is
    /// synced first, so that only the last segment can ever hold a torn write.
    func rollSegmentIfFull(_ core: inout Core) throws(ConveyorError) {
        guard var active = core.segments.popLast() else { return }
        defer { core.segments.append(active) }
        guard active.size >= UInt64(options.segmentSize) else { return }
        try active.trimPreallocation()
        try active.sync()
        let next = try JournalSegment.create(in: core.path, number: active.number + 1, preallocation: preallocation)
        do throws(ConveyorError) {
            try next.sync()
        } catch {
            next.close()
            throw error
        }
        FileStoreIO.syncDirectory(core.path)
        core.segments.append(active)
        active = next
    }

    /// Encodes one batch as one record; returns whether it releases references (a compaction hint).
    private static func encode(
        _ encoded: EncodedBatch, groupStart: UInt64, into writer: inout JournalWriter, index: inout JournalIndex,
        bodies: inout [(start: Int, length: Int)]
    ) -> Bool {
        var releases = false
        var added = 0
        let batch = encoded.batch
        let start = writer.beginRecord(groupStart: groupStart)
        writer.byte(JournalRecord.batchKind)
        writer.varint(UInt64(batch.operations.count))
        for operation in batch.operations {
            switch operation {
            case .add(let stored):
                writer.byte(JournalRecord.Tag.add)
                writer.varint(stored.sequence)
                writer.varint(UInt64(stored.targets.count))
                for target in stored.targets { writer.bytes(index.keys.encoded[Int(index.number(for: target))]) }
                let body = writer.body(encoded.messages[added])
                added += 1
                bodies.append((body.start, body.length))
            case .remove(let sequence, let key):
                releases = true
                writer.byte(JournalRecord.Tag.remove)
                writer.varint(sequence)
                writer.bytes(index.keys.encoded[Int(index.number(for: key))])
            case .setDeliveryCount(let sequence, let key, let count):
                writer.byte(JournalRecord.Tag.deliveryCount)
                writer.varint(sequence)
                writer.bytes(index.keys.encoded[Int(index.number(for: key))])
                writer.varint(UInt64(clamping: count))
            case .saveSubscription(let record):
                writer.byte(JournalRecord.Tag.saveSubscription)
                writer.bytes(MessageCodec.encode(record))
            case .deleteSubscription(let key):
                releases = true
                writer.byte(JournalRecord.Tag.deleteSubscription)
                writer.bytes(index.keys.encoded[Int(index.number(for: .subscription(key)))])
            case .purge(let key):
                releases = true
                writer.byte(JournalRecord.Tag.purge)
                writer.bytes(index.keys.encoded[Int(index.number(for: key))])
            }
        }
        writer.finishRecord(at: start)
        return releases
    }

    /// Applies one operation to the index after its record is written; `nextBody` gives the
    /// location of the next added body.
    private static func apply(_ operation: StoreOperation, to index: inout JournalIndex, nextBody: () -> BodyLocation) {
        switch operation {
        case .add(let stored):
            let location = nextBody()
            if stored.targets.count == 1, let target = stored.targets.first {
                index.replace(stored.sequence, at: location, references: CollectionOfOne((index.number(for: target), 0)))
            } else {
                index.add(stored.sequence, at: location, targets: stored.targets.map { index.number(for: $0) })
            }
        case .remove(let sequence, let key):
            index.remove(sequence, from: index.number(for: key))
        case .setDeliveryCount(let sequence, let key, let count):
            index.setDeliveryCount(sequence, in: index.number(for: key), to: UInt32(clamping: count))
        case .saveSubscription(let record):
            index.save(record)
        case .deleteSubscription(let key):
            index.deleteSubscription(key, number: index.number(for: .subscription(key)))
        case .purge(let key):
            index.purge(index.number(for: key))
        }
    }

    // MARK: Directory

    /// Creates the directory if needed and returns its canonical path.
    private static func prepareDirectory(_ directory: String) throws(ConveyorError) -> String {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ConveyorError(.storage, "cannot open the file store at '\(directory)': it is a file, not a directory")
            }
        } else {
            do {
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ConveyorError(
                    .storage, "cannot create the file store directory '\(directory)': \(error.localizedDescription)",
                    underlying: error)
            }
        }
        guard let resolved = realpath(directory, nil) else {
            throw FileStoreIO.error("cannot resolve the file store directory '\(directory)'")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension MessageStore where Self == FileStore {
    /// A ``FileStore`` on a directory: `Broker(store: .file(directory: "data"))`.
    /// - Parameters:
    ///   - directory: The directory for the journal; created if missing.
    ///   - options: Durability, segment size and compaction.
    /// - Returns: The store, not yet open.
    public static func file(directory: String, options: FileStore.Options = .init()) -> FileStore {
        FileStore(directory: directory, options: options)
    }
}

extension FileStore: SyncedWriteCounting {
    /// The group commits written with a sync (see ``SyncedWriteCounting``); OS-buffered commits do not count.
    package var syncedWrites: UInt64 { group.syncedWrites }
}
