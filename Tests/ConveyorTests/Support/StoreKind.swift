import Conveyor
import ConveyorLMDB
import Foundation
import Testing

/// The stores the semantic suite runs against. Each new engine adds a case here, and every
/// parameterised test then runs on it too.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case lmdb
    case file
    /// LMDB in its default `.sync` mode, where a single-process store writes commits to its commit
    /// log first and reads merge the log's pending changes with the database: the suites about what
    /// a store keeps (``withCommitLog``) run on it too. Not in ``allCases``: with every semantic
    /// test syncing in parallel, a run took ~4 s longer and its timing-bound tests (delivery delay,
    /// waits of 5 s) failed now and then, the syncs of tests closing their stores holding up the
    /// two cooperative threads.
    case lmdbCommitLog = "lmdb-sync"

    /// Every engine, each in the mode the semantic suite uses (OS-buffered on disk).
    static var allCases: [StoreKind] { [.memory, .lmdb, .file] }

    /// ``allCases`` and LMDB in `.sync` mode, with its commit log: for the store conformance,
    /// persistence, paging and transaction suites.
    static var withCommitLog: [StoreKind] { allCases + [.lmdbCommitLog] }

    var testDescription: String { rawValue }

    /// A place the store keeps its data, reusable to reopen the same store after a broker closes.
    final class Location: Sendable {
        let kind: StoreKind
        let directory: URL
        private let memory = MemoryStore()

        init(kind: StoreKind) {
            self.kind = kind
            self.directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("conveyor-tests-\(UUID().uuidString)")
        }

        /// A store on this location. For the memory store, the same instance every time (its
        /// "disk" is the object); for disk engines, a new object on the same directory each time.
        ///
        /// Disk engines open OS-buffered for the semantic suite (it checks semantics and what
        /// survives a broker restart, not fsync), and LMDB also in `.sync` mode (``lmdbCommitLog``),
        /// which takes another path: its commit log. Each durability mode has its own tests
        /// (``LMDBStoreTests``), and crash safety is tested with real processes.
        func makeStore() throws -> any MessageStore {
            switch kind {
            case .memory: memory
            case .lmdb: LMDBStore(directory: directory, options: LMDBStore.Options(durability: .osBuffered))
            case .lmdbCommitLog: LMDBStore(directory: directory, options: LMDBStore.Options(durability: .sync))
            case .file: FileStore(directory: directory, options: FileStore.Options(durability: .osBuffered))
            }
        }

        deinit {
            try? FileManager.default.removeItem(at: directory)
        }
    }
}

