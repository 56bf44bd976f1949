import Conveyor
import ConveyorLMDB
import Foundation

/// A store the workloads can run on: a name and a way to open it in a directory.
public struct WorkloadStore: Sendable {
    /// The name used on the command line and in results ("memory", "lmdb", "file").
    public let name: String
    /// Whether the store's data lives in the object (memory): reopening must reuse the instance.
    public let keepsDataInInstance: Bool
    /// Opens the store in a directory.
    public let makeStore: @Sendable (URL) throws -> any MessageStore
    /// Opens the store in a directory for sharing with other processes (X1); `nil` for a store
    /// that cannot be shared.
    public let makeSharedStore: (@Sendable (URL) throws -> any MessageStore)?

    /// Creates a store entry.
    /// - Parameters:
    ///   - name: The command-line name.
    ///   - keepsDataInInstance: Whether reopening must reuse the same object.
    ///   - makeSharedStore: Opens the store for sharing with other processes, if it can be.
    ///   - makeStore: Opens the store in a directory.
    public init(name: String, keepsDataInInstance: Bool = false,
                makeSharedStore: (@Sendable (URL) throws -> any MessageStore)? = nil,
                makeStore: @escaping @Sendable (URL) throws -> any MessageStore) {
        self.name = name
        self.keepsDataInInstance = keepsDataInInstance
        self.makeSharedStore = makeSharedStore
        self.makeStore = makeStore
    }

    /// The in-memory store.
    public static let memory = WorkloadStore(name: "memory", keepsDataInInstance: true) { _ in MemoryStore() }

    /// The LMDB store in its default (sync) durability mode.
    public static let lmdb = WorkloadStore(
        name: "lmdb", makeSharedStore: { LMDBStore(directory: $0, options: .init(sharing: .processes)) }
    ) { directory in LMDBStore(directory: directory) }

    /// The file (journal) store in its default (sync) durability mode.
    public static let file = WorkloadStore(name: "file") { directory in FileStore(directory: directory) }

    /// This store in another durability mode, named `<name>/<durability>` (`lmdb/osBuffered`).
    /// The memory store has no durability modes and comes back unchanged; so does any store asked
    /// for ``StoreDurability/sync``, its default. X1 runs only in the default mode (its peer process
    /// opens the store that way), so the store returned cannot be shared.
    /// - Parameter durability: The durability mode.
    /// - Returns: The store in that mode.
    public func with(durability: StoreDurability) -> WorkloadStore {
        guard durability != .sync else { return self }
        let label = "\(name)/\(durability)"
        switch name {
        case WorkloadStore.lmdb.name:
            return WorkloadStore(name: label) { directory in
                LMDBStore(directory: directory, options: .init(durability: durability))
            }
        case WorkloadStore.file.name:
            return WorkloadStore(name: label) { directory in
                FileStore(directory: directory, options: .init(durability: durability))
            }
        default:
            return self
        }
    }

    /// Every store the workloads know, in display order.
    public static let all: [WorkloadStore] = [.memory, .lmdb, .file]

    /// The store with this name (case-insensitive), if any; a `<name>/<durability>` label, as
    /// ``with(durability:)`` names a store, gives the store in that mode.
    /// - Parameter name: A store name.
    public static func named(_ name: String) -> WorkloadStore? {
        let parts = String(name.filter { !$0.isWhitespace }).lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard let base = all.first(where: { $0.name == parts[0] }) else { return nil }
        guard parts.count == 2 else { return parts.count == 1 ? base : nil }
        let durabilities: [StoreDurability] = [.sync, .groupCommit, .osBuffered]
        return durabilities.first { $0.description.lowercased() == parts[1] }.map { base.with(durability: $0) }
    }
}
