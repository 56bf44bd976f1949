import Conveyor

/// Counts a disk store's synced writes over part of a workload (see `SyncedWriteCounting`): how many
/// syncs the messages of the phase cost, once group commit has shared them.
struct SyncedWriteProbe {
    private let store: (any SyncedWriteCounting)?
    private let start: UInt64

    /// Starts counting; a store that does not count (memory) gives no figure.
    init(_ store: any MessageStore) {
        self.store = store as? any SyncedWriteCounting
        start = self.store?.syncedWrites ?? 0
    }

    /// Synced writes since the probe started, per 1,000 of `count` (messages or deliveries); `nil`
    /// for a store that does not count them.
    func perThousand(of count: Int) -> Double? {
        guard let store, count > 0 else { return nil }
        return Double(store.syncedWrites - start) * 1000 / Double(count)
    }
}
