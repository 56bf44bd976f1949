import Conveyor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a single-process ``LMDBStore`` in a durable mode (``LMDBStore/logsCommits``) writes its
/// commits first: one file, `commits.log`, in the store directory. A group commit is one record,
/// one `pwrite` and one `fdatasync`; the commit's changes join the ``PendingChanges`` that reads
/// combine with the database, and a *checkpoint* later writes them into LMDB in one durable
/// transaction.
///
/// Why: a durable LMDB commit writes every page it touched, scattered over the map, and syncs
/// twice (data, then meta page); measured on this project's 2-core VM, 0.45 ms for the data sync
/// of a W3 group commit plus 0.15 ms for the meta page. A record appended to a log is one
/// contiguous write and one sync, and a message sent and consumed between two checkpoints never
/// reaches the database at all.
///
/// **Epochs.** Every record carries the log's epoch, the number of checkpoints before it. A
/// checkpoint stores its epoch in the database (metadata key `checkpointedCommits`) in the same
/// transaction as the changes, and the log then starts the next epoch, writing its records over
/// the file from its start. Reading (``LMDBStore/replayCommitLog``) takes the records of the
/// epoch after the stored one from the file's start and stops at the first record that is torn,
/// damaged or of another epoch: older records left behind are in the database already. Writing
/// over blocks the file already has also makes each sync cheaper than one that grows the file
/// (no change to its size to commit); for the same reason the file is kept filled with zeros
/// ``preallocationStep`` ahead of the records, which a replay stops at like a torn record.
///
/// A plain value kept in the store's state: only the holder of the store's lock writes to it. A
/// group commit writes its record under that lock, syncs it without it (so that reads go on during
/// the sync) and counts it under it again; the store's `logWrites` lock keeps other log writes and
/// checkpoints out meanwhile.
struct CommitLog {
    /// The file's name in the store directory.
    static let fileName = "commits.log"
    /// How many bytes of records (or of pending bodies) make a commit checkpoint.
    static let checkpointThreshold = 4 << 20
    /// How many pending references make a commit checkpoint (a read of a page walks those of its
    /// destination above the page's start).
    static let checkpointReferences = 32_768
    /// Past this many bytes of records or pending bodies (because checkpoints keep failing),
    /// commits stop going to the log and write to LMDB directly, where they meet the failure.
    static let overflowThreshold = 64 << 20
    /// A file grown past this is cut when a checkpoint empties it.
    static let truncationThreshold = 16 << 20
    /// How far ahead of the records the file is kept filled with zeros (see
    /// ``FileStoreIO/writeZeros(_:from:to:)``): a record written over blocks the file already
    /// has syncs about twice as fast as one that grows it.
    static let preallocationStep = 1 << 20

    let path: String
    private let descriptor: Int32
    /// The epoch of the records written now.
    private(set) var epoch: UInt64
    /// Where the next record goes: the end of this epoch's records.
    private(set) var size = 0
    /// How long the file is (older records may follow this epoch's).
    private var extent: Int
    /// Encoding space, reused from record to record.
    private var buffer: [UInt8] = []

    /// Opens (creating it if needed) the log of a directory whose records are all in the database,
    /// to write the epoch after `checkpointed`.
    /// - Throws: ``ConveyorError/Code/storage`` if the file cannot be opened.
    init(directory: String, checkpointed: UInt64) throws(ConveyorError) {
        path = directory + "/" + Self.fileName
        descriptor = POSIX.open(path, O_RDWR | O_CREAT)
        guard descriptor >= 0 else {
            throw ConveyorError(
                .storage, "cannot open the commit log '\(path)' of the LMDB store: \(POSIX.describe(errno)); "
                    + "check that the directory is writable by this process")
        }
        var status = stat()
        extent = fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
        epoch = checkpointed + 1
    }

    /// Closes the file; what it holds stays for the next open.
    func close() {
        POSIX.close(descriptor)
    }

    /// A record written after the others and not yet counted: ``sync(_:)`` it (without the
    /// store's lock, if the caller keeps other writers out), then ``count(_:)`` it.
    struct WrittenRecord: Sendable {
        fileprivate let descriptor: Int32
        fileprivate let path: String
        fileprivate let offset: Int
        fileprivate let length: Int
    }

    /// Writes one record of `operations` after the others (one `pwrite`, no sync). Until
    /// ``count(_:)``, the next record would be written over it.
    /// - Throws: ``ConveyorError/Code/storage`` if the write fails; nothing of it may be applied.
    mutating func write(_ operations: [LoggedOperation]) throws(ConveyorError) -> WrittenRecord {
        buffer.removeAll(keepingCapacity: true)
        CommitLogRecord.encode(operations, epoch: epoch, into: &buffer)
        if size + buffer.count > extent { try preallocate(to: size + buffer.count + Self.preallocationStep) }
        let written = buffer.withUnsafeBytes { FileStoreIO.writeAll(descriptor, $0, at: UInt64(size)) }
        if !written { throw Self.failure("write to", errno, path: path) }
        extent = max(extent, size + buffer.count)
        let record = WrittenRecord(descriptor: descriptor, path: path, offset: size, length: buffer.count)
        if buffer.capacity > 1 << 20 { buffer = [] }
        return record
    }

    /// Fills the file with zeros from its end up to `target` and syncs them. A replay stops at
    /// the zeros after the last record, as at a torn one.
    private mutating func preallocate(to target: Int) throws(ConveyorError) {
        guard FileStoreIO.writeZeros(descriptor, from: UInt64(extent), to: UInt64(target)) else {
            throw Self.failure("extend", errno, path: path)
        }
        guard fdatasync(descriptor) == 0 else { throw Self.failure("sync", errno, path: path) }
        extent = target
    }

    /// Starts the disk writing a record, without waiting (see ``FileStoreIO/startWriteback(_:offset:length:)``).
    static func startWriteback(_ record: WrittenRecord) {
        FileStoreIO.startWriteback(record.descriptor, offset: record.offset, length: record.length)
    }

    /// Waits until a written record is on disk (`fdatasync`).
    /// - Throws: ``ConveyorError/Code/storage`` if the sync fails; then ``spoil(_:)`` the record.
    static func sync(_ record: WrittenRecord) throws(ConveyorError) {
        guard fdatasync(record.descriptor) != 0 else { return }
        throw failure("sync", errno, path: record.path)
    }

    /// Spoils the length of a record whose sync failed: it may reach the disk later all the same,
    /// and a replay must never apply a commit that was reported failed.
    static func spoil(_ record: WrittenRecord) {
        var zero: UInt32 = 0
        _ = withUnsafeBytes(of: &zero) { FileStoreIO.writeAll(record.descriptor, $0, at: UInt64(record.offset)) }
    }

    /// Counts a written (and, for a durable commit, synced) record: the next one goes after it.
    mutating func count(_ record: WrittenRecord) {
        size = record.offset + record.length
    }

    /// Starts the next epoch once a checkpoint stored this one in the database: the next record is
    /// written at the file's start.
    mutating func startNextEpoch() {
        epoch += 1
        size = 0
        // A failed truncation only leaves more old records to write over.
        if extent > Self.truncationThreshold, ftruncate(descriptor, 0) == 0 { extent = 0 }
    }

    private static func failure(_ action: String, _ code: Int32, path: String) -> ConveyorError {
        let code = code == 0 ? EIO : code
        return ConveyorError(
            .storage, "cannot \(action) the commit log '\(path)' of the LMDB store: \(POSIX.describe(code))"
                + (code == ENOSPC || code == EFBIG ? "; free disk space and retry" : "") + " (nothing of the commit was stored)")
    }

    // MARK: Reading

    /// Reads the records of the epoch after `checkpointed` from a directory's log, if it has one.
    /// - Returns: Their operations, in order.
    /// - Throws: ``ConveyorError/Code/storage`` if the file exists but cannot be read or decoded.
    static func logged(in directory: String, after checkpointed: UInt64) throws(ConveyorError) -> [LoggedOperation] {
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConveyorError(
                .storage, "cannot read the commit log '\(path)' of the LMDB store; check that it is readable by this process")
        }
        var operations: [LoggedOperation] = []
        let outcome = data.withUnsafeBytes { raw in
            Result { () throws(ConveyorError) in
                _ = try CommitLogRecord.read(raw, epoch: checkpointed + 1) { operations.append(contentsOf: $0) }
            }
        }
        if case .failure(let error) = outcome {
            throw ConveyorError(.storage, "cannot replay the commit log '\(path)' of the LMDB store: \(error.message)")
        }
        return operations
    }

    /// Whether a directory's log starts with a valid record, of any epoch.
    static func holdsRecords(in directory: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: directory + "/" + fileName) else { return false }
        return data.withUnsafeBytes { RecordFraming.contents(of: $0, at: 0) { $0 > 8 && $0 <= CommitLogRecord.maximumLength } != nil }
    }

    /// Removes a directory's log if it exists (a store that does not log first checkpoints what it holds).
    static func removeFile(directory: String) {
        POSIX.unlinkIfPresent(directory + "/" + fileName)
    }
}
