import Conveyor
import Logging

extension LMDBStore {
    /// How an ``LMDBStore`` is set up. Every field has a default that suits most applications.
    public struct Options: Sendable {
        /// When a commit counts as done; ``Durability/sync`` by default.
        public var durability: Durability
        /// The size the memory map starts with, in bytes (64 MiB by default). The map grows by
        /// doubling when it fills up, so this is a starting point, not a limit; the data file only
        /// takes the space its data needs.
        public var initialMapSize: Int
        /// The size the map may grow to, in bytes (1 TiB by default). A commit that needs more fails
        /// with ``ConveyorError/Code/resourceAllocation`` and stores nothing.
        public var maximumMapSize: Int
        /// Whether one process or several open the store; ``Sharing/singleProcess`` by default.
        public var sharing: Sharing
        /// Where the store reports what it cannot report by throwing: a failure while it closes
        /// (folding the delivery log, keeping this process's statistics, deleting the subscriptions
        /// this process owns). Defaults to a logger labelled `conveyor.lmdb`.
        public var logger: Logger
        /// How many bytes of commit-log records or pending bodies make a commit checkpoint
        /// (``CommitLog/checkpointThreshold`` unless a test sets a smaller one, so that kills land
        /// during checkpoints too).
        package var checkpointBytes = CommitLog.checkpointThreshold
        /// Called by a group commit right before it syncs its commit-log record, without the
        /// store's lock; tests hold the sync there, or throw to play a failed sync.
        package var beforeCommitLogSync: (@Sendable () throws(ConveyorError) -> Void)?
        /// Called by a page read that reads the database without the store's lock (see
        /// ``LMDBStore/messages(in:after:limit:)``), in its read transaction before it reads;
        /// tests hold the read there.
        package var duringUnlockedRead: (@Sendable () -> Void)?
        /// Called when growing the map or closing starts waiting for such reads to end.
        package var onWaitForUnlockedReads: (@Sendable () -> Void)?

        /// Creates options.
        /// - Parameters:
        ///   - durability: When a commit counts as done; see ``Durability``.
        ///   - initialMapSize: The starting map size in bytes.
        ///   - maximumMapSize: The largest map size in bytes.
        ///   - sharing: Whether one process or several open the store; see ``Sharing``.
        ///   - logger: Where failures the store cannot throw are reported.
        public init(
            durability: Durability = .sync, initialMapSize: Int = 64 << 20, maximumMapSize: Int = 1 << 40,
            sharing: Sharing = .singleProcess, logger: Logger = Logger(label: "conveyor.lmdb")
        ) {
            self.durability = durability
            self.initialMapSize = initialMapSize
            self.maximumMapSize = maximumMapSize
            self.sharing = sharing
            self.logger = logger
        }
    }

    /// Which processes may have a store's directory open at the same time.
    ///
    /// Every process that opens a directory must use the same mode: a single-process store is
    /// refused while any other process has the directory open, and a shared one while a
    /// single-process store has it; the error names the holder.
    public enum Sharing: Sendable, Hashable {
        /// One process at a time (the default): the store holds an exclusive lock on
        /// `conveyor.lock` in its directory for as long as it is open, and another process opening
        /// the directory fails with ``ConveyorError/Code/storage`` naming the holder's process ID.
        case singleProcess
        /// Several processes at once, acting as one broker (``SharedMessageStore``): they allocate
        /// sequence numbers from one shared counter, claim messages so that each goes to one
        /// process at a time, wake each other when messages arrive, and release the claims and
        /// process-owned subscriptions of a process that dies. The group's transient state lives in
        /// the directory's `shared/` folder and is reset when the first process of a new group
        /// opens the store.
        case processes
    }

    /// When a commit counts as done; see ``StoreDurability``. With ``Sharing/singleProcess`` in
    /// `.sync` and `.groupCommit`, a commit is one record appended to the store's commit log and
    /// one `fdatasync` (see ``CommitLog``), and checkpoints write the logged changes into LMDB, each
    /// one durable LMDB transaction of two syncs (data pages, then the meta page); with
    /// ``Sharing/processes`` every commit is such a transaction. `.osBuffered` sets `MDB_NOSYNC`, and LMDB's
    /// copy-on-write pages keep the file consistent after a power loss on file systems that keep
    /// write order (on others, use `.groupCommit` when a power loss must not damage the store).
    public typealias Durability = StoreDurability
}
