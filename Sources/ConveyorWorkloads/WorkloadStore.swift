import Conveyor

/// A named kind of store that workloads run on: how `conveyor bench --store NAME` finds one.
///
/// Each run gets a new store from ``makeStore``, so runs do not see each other's messages. A new
/// engine adds a static member and an entry in ``all``.
public struct WorkloadStore: Sendable {
    /// The name used on the command line and in results, for example `memory`.
    public let name: String
    /// Creates a fresh, empty store for one run.
    public let makeStore: @Sendable () throws -> any MessageStore

    /// Names a kind of store.
    /// - Parameters:
    ///   - name: The name for command lines and results.
    ///   - makeStore: Creates a fresh, empty store; called once per run.
    public init(name: String, makeStore: @escaping @Sendable () throws -> any MessageStore) {
        self.name = name
        self.makeStore = makeStore
    }

    /// The in-memory store: the ceiling the disk-backed stores are compared against.
    public static let memory = WorkloadStore(name: "memory") { MemoryStore() }

    /// Every store workloads can run on, in the order tables list them.
    public static let all: [WorkloadStore] = [.memory]

    /// Looks up a store by name, ignoring case.
    /// - Parameter name: The store's name.
    /// - Returns: The store, or `nil` if there is none by that name.
    public static func named(_ name: String) -> WorkloadStore? {
        let wanted = String(name.filter { !$0.isWhitespace }).lowercased()
        return all.first { $0.name == wanted }
    }
}
