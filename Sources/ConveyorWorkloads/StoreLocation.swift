import Conveyor
import Foundation
import Synchronization

/// Where one workload run keeps its store: a fresh temporary directory (removed afterwards), which
/// the run can open again — W6 closes its broker and reopens the same store.
public final class StoreLocation: Sendable {
    /// The run's private directory, for stores that live on disk.
    public let directory: URL
    private let store: WorkloadStore
    /// The name of the kind of store opened here (``WorkloadStore/name``).
    public var storeName: String { store.name }
    /// Whether the store keeps its data in the object (memory) rather than on disk.
    public var keepsDataInInstance: Bool { store.keepsDataInInstance }
    /// For stores whose data lives in the object itself (memory), the one instance of this location.
    private let instance = Mutex<(any MessageStore)?>(nil)

    /// Creates a location in a new temporary directory.
    /// - Parameters:
    ///   - store: The kind of store to open here.
    ///   - parent: Where to create the directory; the system's temporary directory by default.
    /// - Throws: If the directory cannot be created.
    public init(store: WorkloadStore, parent: URL? = nil) throws {
        self.store = store
        let base = parent ?? FileManager.default.temporaryDirectory
        directory = base.appendingPathComponent("conveyor-bench-\(store.name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Opens the store at this location: a new store object on the same directory, or for stores
    /// held in memory, the same instance every time.
    /// - Throws: The store's error if it cannot be created.
    public func open() throws -> any MessageStore {
        guard store.keepsDataInInstance else { return try store.makeStore(directory) }
        return try instance.withLock { (existing) throws -> any MessageStore in
            if let existing { return existing }
            let created = try store.makeStore(directory)
            existing = created
            return created
        }
    }

    /// Opens the store for sharing with other processes (X1).
    /// - Throws: ``WorkloadError/Code/invalidParameter`` if the store cannot be shared.
    public func openShared() throws -> any MessageStore {
        guard let makeShared = store.makeSharedStore else {
            throw WorkloadError(.invalidParameter, "the \(store.name) store cannot be shared between processes; X1 runs on lmdb")
        }
        return try makeShared(directory)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }
}
