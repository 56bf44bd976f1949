import Conveyor
import Synchronization

/// The store directories open in this process.
///
/// LMDB forbids opening one database file twice in a process (the second environment would break
/// the first's locks), so a second ``LMDBStore`` on a directory that is already open is refused
/// here, before LMDB is called.
enum OpenDirectories {
    private static let paths = Mutex<Set<String>>([])

    /// Marks `path` open.
    /// - Parameter path: The canonical directory path.
    /// - Throws: ``ConveyorError/Code/storage`` if it is already open.
    static func claim(_ path: String) throws(ConveyorError) {
        let claimed = paths.withLock { $0.insert(path).inserted }
        guard claimed else {
            throw ConveyorError(
                .storage,
                "the LMDB store at '\(path)' is already open in this process (by another LMDBStore or broker); "
                    + "close it first, or share one broker")
        }
    }

    /// Marks `path` closed.
    /// - Parameter path: A path passed to ``claim(_:)``.
    static func release(_ path: String) {
        _ = paths.withLock { $0.remove(path) }
    }
}
