import Conveyor

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

    /// When a commit counts as done; see ``StoreDurability``. For LMDB a durable write costs two
    /// syncs (data pages, then the meta page); `.osBuffered` sets `MDB_NOSYNC`, and LMDB's
    /// copy-on-write pages keep the file consistent after a power loss on file systems that keep
    /// write order (on others, use `.groupCommit` when a power loss must not damage the store).
    public typealias Durability = StoreDurability
}
