import Conveyor
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a single-process ``LMDBStore`` in a durable mode (``LMDBStore/logsDeliveries``) writes
/// delivery counts (``LMDBStore/recordDeliveries(_:)``) without an LMDB commit: append-only side files in the store directory, never synced, plus an
/// in-memory overlay of the counts they hold that reads combine with the stored ones.
///
/// Why: the counts must survive a crash of the process before the messages are delivered, not a
/// power loss (``MessageStore/recordDeliveries(_:)``), and an LMDB commit costs at least one sync of
/// the data file. A `pwrite` to a file is in the operating system's hands when it returns, which is
/// all the contract asks. The log has a lock of its own, so appending never waits for a commit
/// (whose leader holds the store's lock through its syncs).
///
/// **Folding.** Every durable commit of the store takes the counts logged since the last fold
/// (``beginFold()``) and writes them into the `references` database in the same transaction
/// (never creating a reference, and only raising a count: a delivery count only grows), with the
/// log's *generation* it covers under the metadata key `foldedDeliveries`. So the counts are safe
/// from a power loss once the next durable commit returns, as the protocol promises. A commit that
/// goes to the commit log (``LMDBStore/logsCommits``) folds the same way into its synced record,
/// as raise operations and the generation, and its checkpoint stores them in the database.
///
/// **Generations.** Every record carries the generation it was appended in; each fold closes the
/// current generation and starts the next, and records of a generation at or below the one stored
/// in `foldedDeliveries` are in the database and ignored when the log is read again. This is what
/// lets a later ordinary commit of ``StoreOperation/setDeliveryCount(sequence:in:count:)`` win over
/// a logged count (the commit folds the log, skipping the references it sets itself, and the
/// logged records become obsolete with it), and what makes a commit that fails harmless: nothing
/// is marked folded, the overlay keeps its entries and the next commit folds them again.
///
/// **Rotation.** Two files, `deliveries-a.log` and `deliveries-b.log`. A fold switches appends to
/// the other file if it is empty; after the commit succeeded, every file holding only folded
/// generations is emptied. So under steady load the files take turns and stay small. Emptying is
/// logical: the next record is written at the file's start, over the folded ones, and the file is
/// cut (`ftruncate`) only once it has grown past ``truncationThreshold``; that saves a system call
/// per commit (measured at 5 % of W3's throughput when commits are cheap, in an experiment that
/// logged in OS-buffered stores too). Whatever of the old
/// records is left behind the new ones is never read as theirs: reading stops at the first record
/// that is damaged or of a lower generation than the one before it, and folded generations are
/// skipped anyway.
///
/// **Recovery.** ``LMDBStore/open()`` reads both files (``logged(in:after:)``), applies the
/// counts of unfolded generations to the references that still exist in one durable transaction
/// that also records their generation as folded, and truncates the files (``open(directory:foldedGeneration:)``).
/// Counts are absolute and only grow, so which file or record a count came from does not matter:
/// the highest wins.
final class DeliveryLog: Sendable {
    /// A reference: destination ID and sequence number.
    struct Key: Hashable, Comparable, Sendable {
        var destination: UInt64
        var sequence: UInt64

        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.destination, lhs.sequence) < (rhs.destination, rhs.sequence)
        }
    }

    /// The counts one commit folds into the database; see ``beginFold()``.
    struct Fold: Sendable {
        /// Once the commit succeeds, every record of this generation and older is in the database.
        let generation: UInt64
        /// The overlay's counts when the fold began, sorted by key (the order of the references).
        let entries: [(key: Key, count: UInt32)]
    }

    /// What ``logged(in:after:)`` found.
    struct Logged {
        /// The highest count logged for each reference, from records of unfolded generations.
        var counts: [Key: UInt32] = [:]
        /// The highest generation of those records (0 if there were none).
        var highestGeneration: UInt64 = 0
    }

    /// The two files, in the store directory.
    static let fileNames = ["deliveries-a.log", "deliveries-b.log"]

    /// How large the file appended to may grow before the store folds it with a commit of its
    /// own (4 MiB, some 200,000 counts): only reached when deliveries are recorded again and again
    /// with no commit between them (messages redelivered without end, say).
    static let foldThreshold = 4 << 20

    /// How large a file may have grown for emptying it to leave its folded records in place, to be
    /// written over (see *Rotation* above); a larger one is cut to zero bytes.
    static let truncationThreshold = 1 << 20

    private struct File {
        var descriptor: Int32
        var path: String
        /// Where the next record goes: the end of the records not yet folded when it was last
        /// emptied.
        var size: Int
        /// How long the file is (at least `size`: older, folded records may follow).
        var extent: Int
        /// The generation of the last record appended (0 when empty).
        var highestGeneration: UInt64
    }

    private struct State {
        /// Both files while open; empty while closed.
        var files: [File] = []
        /// The file appended to.
        var active = 0
        /// The generation of records appended now.
        var generation: UInt64 = 1
        /// Records of this generation and older are in the database.
        var foldedGeneration: UInt64 = 0
        /// The generation of the last record appended.
        var appendedGeneration: UInt64 = 0
        /// The highest count logged and not yet folded, per reference.
        var overlay: [Key: UInt32] = [:]
        /// The destination IDs the store knows (a queue without one holds no references).
        var destinations: [StoreQueueKey: UInt64] = [:]
        /// The last destination looked up: a batch mostly names one queue.
        var lastDestination: (key: StoreQueueKey, id: UInt64)?
        /// Encoding space, reused from append to append.
        var buffer: [UInt8] = []
        var entries: [(key: Key, count: UInt32)] = []
    }

    private let state = Mutex(State())

    // MARK: Opening and closing

    /// Reads both log files of a store directory.
    /// - Parameters:
    ///   - directory: The canonical store directory.
    ///   - folded: The generation stored as folded: older records are skipped.
    /// - Returns: The counts of records above `folded`, until each file's torn tail (see
    ///   ``DeliveryLogRecord/read(_:_:)``).
    /// - Throws: ``ConveyorError/Code/storage`` if a file exists but cannot be read.
    static func logged(in directory: String, after folded: UInt64) throws(ConveyorError) -> Logged {
        var logged = Logged()
        for name in fileNames {
            let path = directory + "/" + name
            let bytes = try contents(of: path)
            bytes.withUnsafeBytes { raw in
                // Past the valid records is a torn tail: see DeliveryLogRecord.read(_:_:).
                _ = DeliveryLogRecord.read(raw) { generation, entries in
                    guard generation > folded else { return }
                    logged.highestGeneration = max(logged.highestGeneration, generation)
                    for entry in entries {
                        logged.counts[entry.key] = max(logged.counts[entry.key] ?? 0, entry.count)
                    }
                }
            }
        }
        return logged
    }

    /// Opens (creating them if needed) and empties both files, and starts appending after
    /// `foldedGeneration`. Call once what they held is in the database.
    /// - Parameters:
    ///   - directory: The canonical store directory.
    ///   - foldedGeneration: The generation stored as folded.
    /// - Throws: ``ConveyorError/Code/storage`` if a file cannot be created or emptied.
    func open(directory: String, foldedGeneration: UInt64) throws(ConveyorError) {
        var files: [File] = []
        for name in Self.fileNames {
            let path = directory + "/" + name
            let descriptor = POSIX.open(path, O_RDWR | O_CREAT)
            guard descriptor >= 0, ftruncate(descriptor, 0) == 0 else {
                let reason = POSIX.describe(errno)
                if descriptor >= 0 { POSIX.close(descriptor) }
                for file in files { POSIX.close(file.descriptor) }
                throw ConveyorError(
                    .storage, "cannot open the delivery log '\(path)' of the LMDB store: \(reason); "
                        + "check that the directory is writable by this process")
            }
            files.append(File(descriptor: descriptor, path: path, size: 0, extent: 0, highestGeneration: 0))
        }
        state.withLock { state in
            for file in state.files { POSIX.close(file.descriptor) }
            state = State()
            state.files = files
            state.foldedGeneration = foldedGeneration
            state.appendedGeneration = foldedGeneration
            state.generation = foldedGeneration + 1
        }
    }

    /// Removes both files if they exist (a store that does not log, shared by processes or
    /// OS-buffered, first folds what a logging store left, then removes them).
    static func removeFiles(directory: String) {
        for name in fileNames { POSIX.unlinkIfPresent(directory + "/" + name) }
    }

    /// Closes the files and forgets the overlay. Whatever was not folded stays in the files for
    /// the next ``LMDBStore/open()``.
    func close() {
        state.withLock { state in
            for file in state.files { POSIX.close(file.descriptor) }
            state = State()
        }
    }

    /// Adds destination IDs the store learned (at open, or when a commit created them).
    func learn(_ destinations: [StoreQueueKey: UInt64]) {
        state.withLock { state in
            state.destinations.merge(destinations) { _, new in new }
        }
    }

    // MARK: Appending and reading

    /// Appends the delivery counts of a batch as one record (one `pwrite`, no sync) and adds them
    /// to the overlay. Operations other than ``StoreOperation/setDeliveryCount(sequence:in:count:)``
    /// are ignored, and so are queues without a destination ID (they hold no references).
    /// - Parameter batch: Delivery-count updates.
    /// - Returns: The size of the file appended to (see ``foldThreshold``), or `nil` if the log is
    ///   closed (nothing written).
    /// - Throws: ``ConveyorError/Code/storage`` if the write fails; nothing of the batch is logged
    ///   then.
    func append(_ batch: StoreBatch) throws(ConveyorError) -> Int? {
        try state.withLock { (state) throws(ConveyorError) -> Int? in
            guard !state.files.isEmpty else { return nil }
            state.entries.removeAll(keepingCapacity: true)
            for operation in batch.operations {
                guard case .setDeliveryCount(let sequence, let queue, let count) = operation else { continue }
                let id: UInt64
                if let last = state.lastDestination, last.key == queue {
                    id = last.id
                } else {
                    guard let found = state.destinations[queue] else { continue }
                    state.lastDestination = (queue, found)
                    id = found
                }
                state.entries.append((Key(destination: id, sequence: sequence), UInt32(clamping: max(count, 0))))
            }
            guard !state.entries.isEmpty else { return state.files[state.active].size }
            state.buffer.removeAll(keepingCapacity: true)
            DeliveryLogRecord.encode(state.entries, generation: state.generation, into: &state.buffer)
            let file = state.files[state.active]
            if let code = Self.write(state.buffer, to: file.descriptor, at: file.size) {
                // A partial record may be left behind: the next record overwrites it (or, if none
                // comes, it is a torn tail).
                state.files[state.active].extent = max(file.extent, file.size + state.buffer.count)
                throw ConveyorError(
                    .storage, "cannot write delivery counts to '\(file.path)': \(POSIX.describe(code))"
                        + (code == ENOSPC || code == EFBIG ? "; free disk space and retry" : ""))
            }
            state.files[state.active].size += state.buffer.count
            state.files[state.active].extent = max(file.extent, state.files[state.active].size)
            state.files[state.active].highestGeneration = state.generation
            state.appendedGeneration = state.generation
            for entry in state.entries {
                state.overlay[entry.key] = max(state.overlay[entry.key] ?? 0, entry.count)
            }
            if state.buffer.capacity > 1 << 20 { state.buffer = [] }
            return state.files[state.active].size
        }
    }

    /// Raises the delivery counts of a page of references read from the database to the counts
    /// logged for them and not folded yet.
    /// - Parameters:
    ///   - page: References of one destination.
    ///   - destination: Their destination ID.
    func raise(_ page: inout [RecoveredMessage], destination: UInt64) {
        state.withLock { state in
            guard !state.overlay.isEmpty else { return }
            for index in page.indices {
                guard let logged = state.overlay[Key(destination: destination, sequence: page[index].sequence)] else { continue }
                if Int(logged) > page[index].deliveryCount { page[index].deliveryCount = Int(logged) }
            }
        }
    }

    // MARK: Folding

    /// Starts folding the logged counts into a commit, if anything was logged since the last
    /// successful fold: closes the current generation (later appends belong to the next one) and
    /// switches appends to the other file if it is empty. Call with the store's lock held, before
    /// the commit's write transaction; then ``finishFold(_:)`` if the commit succeeded. If it
    /// failed, there is nothing to undo: the next fold takes everything again.
    /// - Returns: The counts to fold, or `nil` if there is nothing to fold (or the log is closed).
    func beginFold() -> Fold? {
        state.withLock { state -> Fold? in
            guard !state.files.isEmpty, state.appendedGeneration > state.foldedGeneration else { return nil }
            let generation = state.generation
            state.generation += 1
            let other = 1 - state.active
            if state.files[other].size == 0 { state.active = other }
            let entries = state.overlay.map { (key: $0.key, count: $0.value) }.sorted { $0.key < $1.key }
            return Fold(generation: generation, entries: entries)
        }
    }

    /// Ends a fold whose commit succeeded: drops from the overlay the counts that did not change
    /// since ``beginFold()`` (the database has them now; a count raised meanwhile stays, and its
    /// record is in a later generation), and empties the files that hold only folded generations
    /// (see *Rotation* in the type's documentation).
    /// - Parameter fold: What ``beginFold()`` returned.
    func finishFold(_ fold: Fold) {
        state.withLock { state in
            guard !state.files.isEmpty else { return }
            state.foldedGeneration = max(state.foldedGeneration, fold.generation)
            if state.appendedGeneration <= fold.generation {
                // Nothing was logged since the fold began: the overlay holds exactly the fold's
                // counts. (A consumer's commit mostly comes here, on its way back to the consumer.)
                state.overlay.removeAll(keepingCapacity: true)
            } else {
                for entry in fold.entries where state.overlay[entry.key] == entry.count {
                    state.overlay[entry.key] = nil
                }
            }
            for index in state.files.indices {
                let file = state.files[index]
                guard file.size > 0, file.highestGeneration <= state.foldedGeneration else { continue }
                state.files[index].size = 0
                state.files[index].highestGeneration = 0
                // A failed truncation only leaves more folded records to write over.
                if file.extent > Self.truncationThreshold, ftruncate(file.descriptor, 0) == 0 {
                    state.files[index].extent = 0
                }
            }
        }
    }

    // MARK: Testing

    /// How many references have a logged count not folded yet; for tests.
    var overlayCountForTesting: Int { state.withLock { $0.overlay.count } }

    /// How many bytes of unfolded records each file holds (`deliveries-a.log`, then
    /// `deliveries-b.log`); for tests.
    var sizesForTesting: [Int] { state.withLock { $0.files.map(\.size) } }

    // MARK: Files

    /// Writes all of `bytes` at `offset`; returns the `errno` value of a failure, `nil` on success.
    private static func write(_ bytes: [UInt8], to descriptor: Int32, at offset: Int) -> Int32? {
        let written = bytes.withUnsafeBytes { FileStoreIO.writeAll(descriptor, $0, at: UInt64(offset)) }
        return written ? nil : (errno == 0 ? EIO : errno)
    }

    /// The whole content of a file; empty if it does not exist.
    private static func contents(of path: String) throws(ConveyorError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else { return Data() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConveyorError(
                .storage, "cannot read the delivery log '\(path)' of the LMDB store; check that it is readable by this process")
        }
        return data
    }
}
