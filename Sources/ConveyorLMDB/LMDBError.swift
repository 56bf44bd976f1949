import CLMDB
import Foundation
import Conveyor

/// A failed LMDB call: the return code and the function that returned it.
///
/// Internal: it never reaches users. ``LMDBEnvironment`` handles `MDB_MAP_FULL` and
/// `MDB_MAP_RESIZED` itself and turns everything else into a ``ConveyorError`` with
/// ``storageError(path:action:)``.
struct LMDBError: Error {
    /// The LMDB or `errno` code.
    let code: Int32
    /// The LMDB function (or the step) that failed, for the message.
    let operation: StaticString
    /// What exactly is wrong, when there is more to say than the code (which record is corrupt).
    var detail: String? = nil

    /// LMDB's own explanation of the code (`mdb_strerror`), which also covers `errno` values.
    var explanation: String {
        guard let text = mdb_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// Whether the map is full and may be grown.
    var isMapFull: Bool { code == MDB_MAP_FULL }

    /// A stored value has an unexpected shape (a count of the wrong length, for instance).
    static func corrupted(_ operation: StaticString, _ detail: String? = nil) -> LMDBError {
        LMDBError(code: MDB_CORRUPTED, operation: operation, detail: detail)
    }

    /// The error users see: what could not be done, where, and LMDB's explanation.
    /// - Parameters:
    ///   - path: The store directory.
    ///   - action: What was being done, for example "open" or "commit to".
    func storageError(path: String, action: String) -> ConveyorError {
        ConveyorError(
            .storage,
            "cannot \(action) the LMDB store at '\(path)': \(explanation) (\(operation) returned \(code))"
                + (detail.map { ": \($0)" } ?? "") + advice)
    }

    private var advice: String {
        switch code {
        case ENOSPC, EFBIG: "; free disk space and retry: nothing of the failed change was stored"
        // LMDB reports a short write (a full disk or a file size limit, typically) as EIO.
        case EIO: "; the disk may be full or failing: check free space and retry; nothing of the failed change was stored"
        case EACCES, EPERM, EROFS: "; check that the directory is writable by this process"
        case MDB_INVALID, MDB_CORRUPTED, MDB_PAGE_NOTFOUND: "; the files are damaged or not an LMDB store"
        case MDB_VERSION_MISMATCH: "; the files were written by an incompatible LMDB version"
        default: ""
        }
    }
}

/// Returns normally for `MDB_SUCCESS`, throws ``LMDBError`` otherwise.
@inline(__always)
func check(_ code: Int32, _ operation: StaticString) throws(LMDBError) {
    if code != MDB_SUCCESS { throw LMDBError(code: code, operation: operation) }
}
