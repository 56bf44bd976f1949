import Conveyor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `flock`s that keep processes from opening one LMDB store in incompatible ways.
///
/// - `conveyor.lock`: a single-process store holds it exclusively (and writes its process ID into
///   it, so a refused opener can name it); every process of a shared group holds it shared. A
///   single-process opener is therefore refused while anyone has the store open, and a shared
///   opener while a single-process one has it. Only single-process openers ever take it
///   exclusively, so a shared opener that cannot take it shared knows for sure who holds it.
/// - `conveyor-group.lock` (shared mode only): each member holds it shared. A shared opener that
///   can take it exclusively is the first of a new group: every earlier member is dead, and it
///   resets the group's state (``LMDBStore`` does that) before downgrading to shared. Opening
///   members wait on it (blocking) only while such a first opener resets.
///
/// Both locks are dropped by the kernel when a process dies, so a crash never leaves a stale lock.
struct ProcessLock: Sendable {
    /// The name of the mode lock inside the store directory.
    static let fileName = "conveyor.lock"
    /// The name of the group lock inside the store directory.
    static let groupFileName = "conveyor-group.lock"

    private let descriptor: Int32
    private let groupDescriptor: Int32?

    /// Takes `conveyor.lock` exclusively for a single-process store and writes this process's ID.
    /// - Throws: ``ConveyorError/Code/storage`` naming the holder (a process ID, or a shared group).
    static func acquireSingle(directory: String) throws(ConveyorError) -> ProcessLock {
        let path = directory + "/" + fileName
        let descriptor = try openLockFile(path)
        let code = POSIX.lock(descriptor, LOCK_EX | LOCK_NB)
        guard code == 0 else {
            defer { POSIX.close(descriptor) }
            guard code == EWOULDBLOCK else { throw lockFailure(path, code) }
            // Shared holders let us take it shared; a single-process holder does not.
            if POSIX.lock(descriptor, LOCK_SH | LOCK_NB) == 0 {
                _ = POSIX.lock(descriptor, LOCK_UN)
                throw sharedHolder(directory)
            }
            throw singleHolder(directory, pid: readHolder(descriptor))
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return ProcessLock(descriptor: descriptor, groupDescriptor: nil)
    }

    /// Joins the group of processes sharing the store: takes `conveyor.lock` shared, then
    /// `conveyor-group.lock` exclusively if possible (`isFirst`), shared otherwise (waiting while a
    /// first opener resets the group).
    ///
    /// A first opener resets the group state and then calls ``finishReset()``.
    /// - Throws: ``ConveyorError/Code/storage`` if a single-process store holds the directory
    ///   (naming its process ID) or a lock file cannot be used.
    static func joinGroup(directory: String) throws(ConveyorError) -> (lock: ProcessLock, isFirst: Bool) {
        let path = directory + "/" + fileName
        let descriptor = try openLockFile(path)
        let code = POSIX.lock(descriptor, LOCK_SH | LOCK_NB)
        guard code == 0 else {
            defer { POSIX.close(descriptor) }
            guard code == EWOULDBLOCK else { throw lockFailure(path, code) }
            throw singleHolder(directory, pid: readHolder(descriptor))
        }
        let groupPath = directory + "/" + groupFileName
        let groupDescriptor: Int32
        do throws(ConveyorError) {
            groupDescriptor = try openLockFile(groupPath)
        } catch {
            POSIX.close(descriptor)
            throw error
        }
        let exclusive = POSIX.lock(groupDescriptor, LOCK_EX | LOCK_NB)
        let isFirst = exclusive == 0
        if !isFirst {
            // Members hold it shared: this returns at once, or when a first opener has reset.
            let shared = exclusive == EWOULDBLOCK ? POSIX.lock(groupDescriptor, LOCK_SH) : exclusive
            guard shared == 0 else {
                POSIX.close(groupDescriptor)
                POSIX.close(descriptor)
                throw lockFailure(groupPath, shared)
            }
        }
        return (ProcessLock(descriptor: descriptor, groupDescriptor: groupDescriptor), isFirst)
    }

    /// Downgrades a first opener's exclusive group lock to shared, once the group is reset.
    ///
    /// Between the two, another first opener may slip in and reset again: harmless, since this
    /// process has not opened the group's files yet.
    func finishReset() throws(ConveyorError) {
        guard let groupDescriptor else { return }
        _ = POSIX.lock(groupDescriptor, LOCK_UN)
        let code = POSIX.lock(groupDescriptor, LOCK_SH)
        guard code == 0 else { throw Self.lockFailure(Self.groupFileName, code) }
    }

    /// Releases the locks.
    func release() {
        if let groupDescriptor {
            _ = POSIX.lock(groupDescriptor, LOCK_UN)
            POSIX.close(groupDescriptor)
        }
        _ = POSIX.lock(descriptor, LOCK_UN)
        POSIX.close(descriptor)
    }

    // MARK: Helpers

    private static func openLockFile(_ path: String) throws(ConveyorError) -> Int32 {
        let descriptor = POSIX.open(path, O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw ConveyorError(.storage, "cannot open the lock file '\(path)' of an LMDB store: \(POSIX.describe(code))")
        }
        return descriptor
    }

    private static func lockFailure(_ path: String, _ code: Int32) -> ConveyorError {
        ConveyorError(.storage, "cannot lock '\(path)' of an LMDB store: \(POSIX.describe(code))")
    }

    private static func singleHolder(_ directory: String, pid: Int32?) -> ConveyorError {
        let who = pid.map { "process \($0)" } ?? "another process"
        return ConveyorError(
            .storage,
            "the LMDB store at '\(directory)' is open in \(who) (single-process mode); close it, "
                + "or open every process with sharing: .processes")
    }

    private static func sharedHolder(_ directory: String) -> ConveyorError {
        ConveyorError(
            .storage,
            "the LMDB store at '\(directory)' is shared by other processes (sharing: .processes); "
                + "open this one with sharing: .processes too")
    }

    private static func readHolder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(String(decoding: buffer[0..<count], as: UTF8.self).prefix { $0.isNumber }))
    }
}
