extension FileStore {
    /// How a ``FileStore`` is set up. Every field has a default that suits most applications.
    public struct Options: Sendable {
        /// When a commit counts as done; ``Durability/sync`` by default.
        public var durability: Durability
        /// The size at which the active journal segment is closed and a new one started, in bytes
        /// (64 MiB by default, at least 64 KiB). Compaction reclaims whole segments, so smaller
        /// segments free space sooner and larger ones mean fewer files. A batch larger than this
        /// still goes into one segment.
        public var segmentSize: Int
        /// Whether the store compacts old segments by itself, on a background queue, when
        /// acknowledgements leave them mostly dead (`true` by default). ``FileStore/compact()``
        /// compacts on demand either way.
        public var compactsAutomatically: Bool

        /// Creates options.
        /// - Parameters:
        ///   - durability: When a commit counts as done; see ``Durability``.
        ///   - segmentSize: The journal segment size in bytes.
        ///   - compactsAutomatically: Whether compaction runs by itself.
        public init(durability: Durability = .sync, segmentSize: Int = 64 << 20, compactsAutomatically: Bool = true) {
            self.durability = durability
            self.segmentSize = max(segmentSize, 64 << 10)
            self.compactsAutomatically = compactsAutomatically
        }
    }

    /// When a commit counts as done: the trade-off between safety and speed.
    ///
    /// | mode | a commit returns | process crash | power loss / kernel crash |
    /// | --- | --- | --- | --- |
    /// | ``sync`` | after `fdatasync` of the write that carried it | nothing lost | nothing lost |
    /// | ``groupCommit`` | as sync, after waiting 200 µs for others to join its write | nothing lost | nothing lost |
    /// | ``osBuffered`` | once the record is handed to the OS (`write`) | nothing lost | the last commits may be lost |
    ///
    /// An open set of values (not an enum), so modes can be added without breaking code that
    /// switches on them.
    public struct Durability: Sendable, Hashable, CustomStringConvertible {
        enum Mode: Sendable, Hashable {
            case sync, groupCommit, osBuffered
        }

        let mode: Mode

        /// Every commit is on disk (`fdatasync`; `fsync` on Darwin) before ``FileStore/commit(_:)``
        /// returns. The default: a send that returned is on disk. Commits that arrive while another
        /// is being written are appended together after it, with one sync for all of them, so
        /// concurrent producers and acknowledging consumers share syncs without any added wait.
        public static let sync = Durability(mode: .sync)

        /// As ``sync``, and the committer that writes a group first waits 200 µs for more commits to
        /// join it: more commits per sync under concurrent load, at the price of that much added
        /// latency. Each commit still returns only when it is on disk.
        public static let groupCommit = Durability(mode: .groupCommit)

        /// No sync on commit: each commit is written to the file (`write`) and the operating system
        /// puts it on disk when it likes; the store syncs when it closes and when it starts a new
        /// segment. A crash of the process loses nothing (the data is in the OS cache); a power loss
        /// or kernel crash can lose the commits of the last moments, and may leave damage in the
        /// last segment that the store then reports when it opens.
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
