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
        /// Called by a durable group commit right before it syncs its records, without the store's
        /// lock; tests hold the sync there, or throw to play a failed sync.
        package var beforeJournalSync: (@Sendable () throws(ConveyorError) -> Void)?

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

    /// When a commit counts as done; see ``StoreDurability``. For the journal a durable write is one
    /// `fdatasync` (`fsync` on Darwin); under `.osBuffered` the store also syncs when it starts a new
    /// segment, and a power loss may leave damage in the last segment that opening then reports.
    public typealias Durability = StoreDurability
}
