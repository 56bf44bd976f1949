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

        /// Creates options.
        /// - Parameters:
        ///   - durability: When a commit counts as done; see ``Durability``.
        ///   - initialMapSize: The starting map size in bytes.
        ///   - maximumMapSize: The largest map size in bytes.
        public init(durability: Durability = .sync, initialMapSize: Int = 64 << 20, maximumMapSize: Int = 1 << 40) {
            self.durability = durability
            self.initialMapSize = initialMapSize
            self.maximumMapSize = maximumMapSize
        }
    }

    /// When a commit counts as done: the trade-off between safety and speed.
    ///
    /// | mode | a commit returns | process crash | power loss / kernel crash |
    /// | --- | --- | --- | --- |
    /// | ``sync`` | after the syncs of the write that carried it (two: data, then meta page) | nothing lost | nothing lost |
    /// | ``groupCommit`` | as sync, after waiting 200 µs for others to join its write | nothing lost | nothing lost |
    /// | ``osBuffered`` | at once; the OS writes later | nothing lost | the last commits may be lost |
    ///
    /// An open set of values (not an enum), so modes can be added without breaking code that
    /// switches on them.
    public struct Durability: Sendable, Hashable, CustomStringConvertible {
        enum Mode: Sendable, Hashable {
            case sync, groupCommit, osBuffered
        }

        let mode: Mode

        /// Every commit is flushed to disk (`fsync`) before ``LMDBStore/commit(_:)`` returns. The
        /// default: a send that returned is on disk. Commits that arrive while another is being
        /// written are written together after it (one transaction, one pair of syncs), so concurrent
        /// producers and acknowledging consumers share syncs without any added wait; a lone
        /// committer pays two syncs (data, then meta page) per commit.
        public static let sync = Durability(mode: .sync)

        /// As ``sync``, and the committer that writes a group first waits 200 µs for more commits to
        /// join it: more commits per pair of syncs under concurrent load, at the price of that much
        /// added latency. Each commit still returns only when its changes are on disk. A batch that
        /// fails is retried alone, so one bad batch never fails its neighbours.
        public static let groupCommit = Durability(mode: .groupCommit)

        /// No sync on commit (`MDB_NOSYNC`): the operating system writes the pages when it likes, and
        /// the store flushes them on ``LMDBStore/close()``. A crash of the process loses nothing (the
        /// pages are in the OS cache); a power loss or kernel crash can lose the commits of the last
        /// moments. LMDB's copy-on-write pages keep the file consistent on file systems that keep
        /// write order; on others, use ``groupCommit`` when a power loss must not damage the store.
        public static let osBuffered = Durability(mode: .osBuffered)

        /// `sync`, `groupCommit` or `osBuffered`.
        public var description: String {
            switch mode {
            case .sync: "sync"
            case .groupCommit: "groupCommit"
            case .osBuffered: "osBuffered"
            }
        }
    }
}
