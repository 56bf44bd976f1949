import Conveyor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One member's files in `shared/members/`: a FIFO other members write a byte into to wake it
/// (`<member ID>.wake`), and a lock file it holds exclusively for as long as it lives
/// (`<member ID>.lock`), which tells the others whether it is still alive.
///
/// The FIFO is opened `O_RDWR | O_NONBLOCK`: with its own writer, a reader never sees end of file,
/// and opening never waits for a peer.
final class WakeChannel: @unchecked Sendable {
    /// The FIFO's read end (also a write end, used to wake the own watcher).
    let descriptor: Int32
    private let lockDescriptor: Int32
    private let fifoPath: String
    private let lockPath: String
    private var isClosed = false

    private init(descriptor: Int32, lockDescriptor: Int32, fifoPath: String, lockPath: String) {
        self.descriptor = descriptor
        self.lockDescriptor = lockDescriptor
        self.fifoPath = fifoPath
        self.lockPath = lockPath
    }

    /// The FIFO of a member.
    static func fifoPath(_ directory: String, member: UInt64) -> String { "\(directory)/\(member).wake" }
    /// The lock file of a member.
    static func lockPath(_ directory: String, member: UInt64) -> String { "\(directory)/\(member).lock" }

    /// Creates the files of `member` in `directory` and takes its lock.
    /// - Throws: ``ConveyorError/Code/storage`` naming the file and the cause.
    static func create(directory: String, member: UInt64) throws(ConveyorError) -> WakeChannel {
        let lockPath = lockPath(directory, member: member)
        let fifoPath = fifoPath(directory, member: member)
        let lockDescriptor = POSIX.open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard lockDescriptor >= 0 else { throw failure("create", lockPath) }
        let locked = POSIX.lock(lockDescriptor, LOCK_EX | LOCK_NB)
        guard locked == 0 else {
            POSIX.close(lockDescriptor)
            throw ConveyorError(.storage, "cannot lock '\(lockPath)' of an LMDB store: \(POSIX.describe(locked))")
        }
        POSIX.unlinkIfPresent(fifoPath)
        guard mkfifo(fifoPath, 0o600) == 0 else {
            let error = failure("create", fifoPath)
            POSIX.close(lockDescriptor)
            POSIX.unlinkIfPresent(lockPath)
            throw error
        }
        let descriptor = POSIX.open(fifoPath, O_RDWR | O_NONBLOCK)
        guard descriptor >= 0 else {
            let error = failure("open", fifoPath)
            POSIX.close(lockDescriptor)
            POSIX.unlinkIfPresent(fifoPath)
            POSIX.unlinkIfPresent(lockPath)
            throw error
        }
        return WakeChannel(descriptor: descriptor, lockDescriptor: lockDescriptor, fifoPath: fifoPath, lockPath: lockPath)
    }

    private static func failure(_ action: String, _ path: String) -> ConveyorError {
        let code = errno
        return ConveyorError(.storage, "cannot \(action) '\(path)' of an LMDB store: \(POSIX.describe(code))")
    }

    /// Waits until a wake arrives or `milliseconds` pass.
    /// - Returns: Whether a wake arrived.
    func wait(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, milliseconds)
        return ready > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// Reads every pending wake byte.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 { continue }
            if count < 0, errno == EINTR { continue }
            return
        }
    }

    /// Wakes this member's own watcher.
    func wakeSelf() { WakeChannel.signal(descriptor) }

    /// Writes one wake byte into a FIFO; a full pipe already holds a wake, so it is not an error.
    static func signal(_ descriptor: Int32) {
        var byte: UInt8 = 1
        while write(descriptor, &byte, 1) < 0, errno == EINTR {}
    }

    /// Unlinks the files and releases the liveness lock: from then on the others see this member as
    /// gone. The FIFO's descriptor stays open until the object goes (a watcher may still hold it).
    func removeFilesAndUnlock() {
        guard !isClosed else { return }
        isClosed = true
        POSIX.unlinkIfPresent(fifoPath)
        POSIX.unlinkIfPresent(lockPath)
        _ = POSIX.lock(lockDescriptor, LOCK_UN)
        POSIX.close(lockDescriptor)
    }

    deinit {
        removeFilesAndUnlock()
        POSIX.close(descriptor)
    }
}

/// Wakes the other members of a group: keeps their FIFOs open (re-listing the members when the
/// member generation changes) and writes one byte into each.
///
/// The FIFOs are opened `O_RDWR | O_NONBLOCK` too: the writer then also counts as a reader, so a
/// write can never raise `SIGPIPE` when the member has just died, and opening never fails because
/// the member has not opened its FIFO yet. A dead member's pipe fills up at worst (the write then
/// fails with `EAGAIN`, ignored) until the reaper removes it and the list is refreshed.
struct WakeNotifier {
    private let directory: String
    private let ownID: UInt64
    private var generation: UInt64?
    private var descriptors: [UInt64: Int32] = [:]

    init(directory: String, ownID: UInt64) {
        self.directory = directory
        self.ownID = ownID
    }

    /// Whether the member list must be re-read before notifying.
    func needsMembers(generation current: UInt64) -> Bool { generation != current }

    /// Adopts a fresh member list.
    mutating func update(members: [GroupMember], generation current: UInt64) {
        let ids = Set(members.map(\.id)).subtracting([ownID])
        for (id, descriptor) in descriptors where !ids.contains(id) {
            POSIX.close(descriptor)
            descriptors[id] = nil
        }
        var complete = true
        for id in ids where descriptors[id] == nil {
            let descriptor = POSIX.open(WakeChannel.fifoPath(directory, member: id), O_RDWR | O_NONBLOCK)
            if descriptor >= 0 { descriptors[id] = descriptor } else { complete = false }
        }
        // A FIFO that could not be opened yet (a member still starting) is retried next time.
        generation = complete ? current : nil
    }

    /// Writes a wake byte to every other member.
    func notify() {
        for descriptor in descriptors.values { WakeChannel.signal(descriptor) }
    }

    /// Closes every FIFO.
    mutating func close() {
        for descriptor in descriptors.values { POSIX.close(descriptor) }
        descriptors = [:]
        generation = nil
    }
}
