/// A disk store that counts its synced commits: the writes it made durable with a sync (one per
/// group commit, however many commits shared it). The benchmarks divide it by the messages moved to
/// show how well an engine shares its syncs.
package protocol SyncedWriteCounting: AnyObject {
    /// Synced writes since the store was created: each is one `fdatasync` for the file store, one
    /// synchronous transaction commit (two flushes) for LMDB.
    var syncedWrites: UInt64 { get }
}
