import CLMDB
import Conveyor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The counters every process sharing a store reads and bumps: a small file (`shared/counters`)
/// mapped `MAP_SHARED` into each of them and changed with atomic instructions, so that allocating
/// a sequence number costs no system call and no lock.
///
/// Layout (native byte order: the sharers are on one machine): offset 0, the last sequence number
/// allocated; 8, the subscription generation; 16, the member generation (bumped whenever a member
/// joins or leaves, so that notifiers know when to re-read the member list).
final class SharedCounters: @unchecked Sendable {
    /// The file's size: one page.
    static let fileSize = 4096

    private let base: UnsafeMutableRawPointer
    private var isUnmapped = false

    private init(base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Opens (creating it, zeroed) and maps the counters file.
    /// - Throws: ``ConveyorError/Code/storage`` naming the path and the cause.
    static func open(path: String) throws(ConveyorError) -> SharedCounters {
        let descriptor = POSIX.open(path, O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw failure(path, "open") }
        defer { POSIX.close(descriptor) }
        let size = lseek(descriptor, 0, SEEK_END)
        guard size >= 0 else { throw failure(path, "inspect") }
        // Only ever extend: another process may already have counted in this file.
        if Int(size) < fileSize, ftruncate(descriptor, off_t(fileSize)) != 0 {
            throw failure(path, "size")
        }
        let mapped = mmap(nil, fileSize, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else { throw failure(path, "map") }
        return SharedCounters(base: mapped)
    }

    private static func failure(_ path: String, _ action: String) -> ConveyorError {
        let code = errno
        return ConveyorError(
            .storage, "cannot \(action) the shared counters file '\(path)' of an LMDB store: \(POSIX.describe(code))")
    }

    private func counter(_ index: Int) -> UnsafeMutablePointer<UInt64> {
        (base + index * MemoryLayout<UInt64>.stride).assumingMemoryBound(to: UInt64.self)
    }

    /// Allocates the next sequence number.
    func nextSequence() -> UInt64 { conveyor_atomic_add_u64(counter(0), 1) }

    /// Raises the sequence counter to at least `sequence` (never lowers it).
    func raiseSequence(to sequence: UInt64) { _ = conveyor_atomic_max_u64(counter(0), sequence) }

    /// The last sequence number allocated.
    var sequence: UInt64 { conveyor_atomic_load_u64(counter(0)) }

    /// The subscription generation.
    var subscriptionGeneration: UInt64 { conveyor_atomic_load_u64(counter(1)) }

    /// Marks a subscription change.
    func bumpSubscriptionGeneration() { _ = conveyor_atomic_add_u64(counter(1), 1) }

    /// The member generation.
    var memberGeneration: UInt64 { conveyor_atomic_load_u64(counter(2)) }

    /// Marks a member joining or leaving.
    func bumpMemberGeneration() { _ = conveyor_atomic_add_u64(counter(2), 1) }

    /// Unmaps the file; the object must not be used afterwards.
    func unmap() {
        guard !isUnmapped else { return }
        isUnmapped = true
        munmap(base, Self.fileSize)
    }

    deinit { unmap() }
}
