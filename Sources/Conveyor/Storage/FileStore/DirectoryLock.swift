#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `LOCK` file that keeps a file store directory to one open store at a time.
///
/// The lock is an exclusive `flock` on the file, held for as long as the store is open and dropped
/// by the kernel if the process dies, so a crashed process never leaves a stale lock behind. A
/// `flock` belongs to one open file description, so a second store object in the same process is
/// refused exactly like another process. The holder writes its process ID into the file, and a
/// refused opener names it in its error.
struct DirectoryLock: Sendable {
    /// The lock file's name inside the store directory.
    static let fileName = "LOCK"

    private let descriptor: Int32

    /// Takes the lock of `directory`, or fails at once if someone holds it.
    /// - Throws: ``ConveyorError/Code/storage`` naming the holder's process ID.
    static func acquire(_ directory: String) throws(ConveyorError) -> DirectoryLock {
        let path = directory + "/" + fileName
        let descriptor = posixOpen(path, O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw FileStoreIO.error("cannot open the lock file '\(path)'") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let error = FileStoreIO.error("cannot lock '\(path)'")
            let holder = readHolder(descriptor)
            posixClose(descriptor)
            guard busy else { throw error }
            let who = holder.map { $0 == getpid() ? "this process (pid \($0))" : "process \($0)" } ?? "another process"
            throw ConveyorError(
                .storage,
                "the file store at '\(directory)' is already open in \(who); close that store or broker first "
                    + "(one store object per directory at a time)")
        }
        var pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeMutableBytes { FileStoreIO.writeAll(descriptor, UnsafeRawBufferPointer($0), at: 0) }
        return DirectoryLock(descriptor: descriptor)
    }

    /// Releases the lock.
    func release() {
        _ = flock(descriptor, LOCK_UN)
        posixClose(descriptor)
    }

    private static func readHolder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return Int32(String(text.prefix { $0.isNumber }))
    }
}
