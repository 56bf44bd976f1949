import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures how many durable 4 KiB writes per second the disk under `directory` takes: a loop of
/// `pwrite` + `fdatasync` (`fsync` on Darwin), the floor any store's one-at-a-time durable commit
/// is compared against.
enum FsyncFloor {
    /// Syncs per second over `iterations` writes, or `nil` if the probe file cannot be written.
    static func measure(in directory: URL, iterations: Int = 400) -> Double? {
        let path = directory.appendingPathComponent("fsync-probe").path
        let descriptor = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return nil }
        defer {
            close(descriptor)
            unlink(path)
        }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        let start = ContinuousClock.now
        for index in 0..<iterations {
            let written = block.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, 4096, off_t(index % 16) * 4096) }
            guard written == 4096 else { return nil }
            #if canImport(Darwin)
            guard fsync(descriptor) == 0 else { return nil }
            #else
            guard fdatasync(descriptor) == 0 else { return nil }
            #endif
        }
        let elapsed = ContinuousClock.now - start
        return Double(iterations) / elapsed.seconds
    }
}
