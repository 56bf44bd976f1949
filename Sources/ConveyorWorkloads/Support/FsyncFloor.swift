import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures how many durable 4 KiB writes per second the disk under `directory` takes: a loop of
/// `pwrite` + `fdatasync` (`fsync` on Darwin), the floor any store's one-at-a-time durable commit
/// is compared against.
///
/// Where the writes land changes what each sync costs, so the probe measures both patterns:
/// - ``Pattern/append``: every write extends the file, as a log without preallocation does, so each
///   sync also commits the file's new size (a file-system journal commit). This is the floor the
///   issues quote ("a 4 KiB write + fdatasync loop: ~135–185 µs here").
/// - ``Pattern/overwrite``: every write rewrites one of 16 blocks already on disk, as LMDB's
///   recycled pages and the file store's preallocated segments do: the data block alone is synced.
enum FsyncFloor {
    /// Where each 4 KiB write of the loop lands.
    enum Pattern: Sendable {
        /// At the end of the file, which grows by 4 KiB per write.
        case append
        /// Over one of 16 blocks written (and synced) before the loop starts.
        case overwrite
    }

    /// Syncs per second over `iterations` writes, or `nil` if the probe file cannot be written.
    static func measure(in directory: URL, pattern: Pattern, iterations: Int = 1_000) -> Double? {
        let path = directory.appendingPathComponent("fsync-probe").path
        let descriptor = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return nil }
        defer {
            close(descriptor)
            unlink(path)
        }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        func write(at offset: off_t) -> Bool {
            let written = block.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, 4096, offset) }
            #if canImport(Darwin)
            return written == 4096 && fsync(descriptor) == 0
            #else
            return written == 4096 && fdatasync(descriptor) == 0
            #endif
        }
        if pattern == .overwrite {
            for index in 0..<ringBlocks where !write(at: offset(ofWrite: index, pattern: .append)) { return nil }
        }
        let start = ContinuousClock.now
        for index in 0..<iterations {
            guard write(at: offset(ofWrite: index, pattern: pattern)) else { return nil }
        }
        let elapsed = ContinuousClock.now - start
        return Double(iterations) / elapsed.seconds
    }

    /// How many blocks the ``Pattern/overwrite`` loop cycles through.
    static let ringBlocks = 16

    /// The file offset of the loop's `index`th 4 KiB write.
    static func offset(ofWrite index: Int, pattern: Pattern) -> off_t {
        switch pattern {
        case .append: off_t(index) * 4096
        case .overwrite: off_t(index % ringBlocks) * 4096
        }
    }
}
