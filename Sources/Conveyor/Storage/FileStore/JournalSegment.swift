#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One file of the journal: `segment-<number>.journal`, a 16-byte header (`"CVJSEG01"` and the
/// segment number) followed by records.
///
/// Records are only ever appended to the last (active) segment; older segments are read-only until
/// compaction deletes them. Every call that can fail throws a ``ConveyorError/Code/storage`` error
/// naming the file and the system's reason.
struct JournalSegment: Sendable {
    /// The size of the segment header.
    static let headerSize = 16
    /// The first eight bytes of every segment.
    static let magic: [UInt8] = Array("CVJSEG01".utf8)

    /// The segment's number; later segments have higher numbers.
    let number: UInt32
    /// The file's path.
    let path: String
    /// An open read-write descriptor.
    let descriptor: Int32
    /// Where the next record goes: the end of the records.
    var size: UInt64
    /// The file's length on disk: the records, then zeros written ahead of them (see
    /// ``append(_:)``).
    var allocated: UInt64

    /// How far ahead of the records the file is filled with zeros (4 MiB, or less for small segments).
    var preallocation: UInt64 = 4 << 20

    init(number: UInt32, path: String, descriptor: Int32, size: UInt64) {
        self.number = number
        self.path = path
        self.descriptor = descriptor
        self.size = size
        self.allocated = size
    }

    /// The file name of segment `number`.
    static func fileName(_ number: UInt32) -> String {
        let digits = String(number)
        return "segment-" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".journal"
    }

    /// The segment number in a file name, or `nil` if it is not a segment's.
    static func number(inFileName name: String) -> UInt32? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".journal") else { return nil }
        return UInt32(name.dropFirst("segment-".count).dropLast(".journal".count))
    }

    /// The position of segment `number` in `segments` (ascending by number), by binary search.
    static func position(of number: UInt32, in segments: [JournalSegment]) -> Int? {
        var low = 0
        var high = segments.count
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].number < number { low = middle + 1 } else { high = middle }
        }
        return low < segments.count && segments[low].number == number ? low : nil
    }

    /// Creates a new, empty segment (its header written, not yet synced).
    static func create(in directory: String, number: UInt32, preallocation: UInt64) throws(ConveyorError) -> JournalSegment {
        let path = directory + "/" + fileName(number)
        let descriptor = posixOpen(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { throw FileStoreIO.error("cannot create the journal segment '\(path)'") }
        var segment = JournalSegment(number: number, path: path, descriptor: descriptor, size: 0)
        segment.preallocation = preallocation
        var header = magic
        withUnsafeBytes(of: UInt64(number).littleEndian) { header.append(contentsOf: $0) }
        do throws(ConveyorError) {
            try segment.append(header)
        } catch {
            segment.close()
            unlink(path)
            throw error
        }
        return segment
    }

    /// Opens an existing segment.
    static func open(in directory: String, number: UInt32) throws(ConveyorError) -> JournalSegment {
        let path = directory + "/" + fileName(number)
        let descriptor = posixOpen(path, O_RDWR, 0)
        guard descriptor >= 0 else { throw FileStoreIO.error("cannot open the journal segment '\(path)'") }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let error = FileStoreIO.error("cannot read the size of '\(path)'")
            posixClose(descriptor)
            throw error
        }
        return JournalSegment(number: number, path: path, descriptor: descriptor, size: UInt64(status.st_size))
    }

    /// Whether `bytes` start with a valid header for this segment.
    func hasValidHeader(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= Self.headerSize, bytes.prefix(8).elementsEqual(Self.magic) else { return false }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) == UInt64(number)
    }

    /// Writes `bytes` after the last record. On failure nothing is left of them: the file is cut
    /// back to the end of the records.
    ///
    /// The file is kept filled with zeros (written and synced) a few MiB ahead of the records, so
    /// that appending overwrites blocks the file system has already allocated and the sync of a
    /// commit flushes data only, not the file's size and block map: as cheap as a sync can be.
    /// Recovery treats the zeros after the last record like a torn write and cuts them off.
    mutating func append(_ bytes: [UInt8]) throws(ConveyorError) {
        let end = size + UInt64(bytes.count)
        if end > allocated { try preallocate(to: end + preallocation) }
        let written = bytes.withUnsafeBytes { FileStoreIO.writeAll(descriptor, $0, at: size) }
        guard written else {
            let error = FileStoreIO.error("cannot write to the journal segment '\(path)'")
            _ = ftruncate(descriptor, off_t(size))
            allocated = size
            throw error
        }
        size = end
    }

    /// Writes zeros from the current allocation up to `target` and syncs them.
    private mutating func preallocate(to target: UInt64) throws(ConveyorError) {
        guard FileStoreIO.writeZeros(descriptor, from: allocated, to: target) else {
            let error = FileStoreIO.error("cannot extend the journal segment '\(path)'")
            _ = ftruncate(descriptor, off_t(size))
            allocated = size
            throw error
        }
        allocated = target
        try sync()
    }

    /// Cuts the zeros after the last record off the file (before the segment is closed or left
    /// behind for a new one), so that the file ends with its last record.
    mutating func trimPreallocation() throws(ConveyorError) {
        guard allocated > size else { return }
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw FileStoreIO.error("cannot truncate the journal segment '\(path)' to \(size) bytes")
        }
        allocated = size
    }

    /// Flushes the file's data to disk (`fdatasync`; `fsync` on Darwin).
    func sync() throws(ConveyorError) {
        guard FileStoreIO.syncData(descriptor) else {
            throw FileStoreIO.error("cannot flush the journal segment '\(path)' to disk")
        }
    }

    /// Cuts the file to `length` bytes and flushes it.
    mutating func truncate(to length: UInt64) throws(ConveyorError) {
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw FileStoreIO.error("cannot truncate the journal segment '\(path)' to \(length) bytes")
        }
        size = length
        allocated = length
        try sync()
    }

    /// Reads `length` bytes at `offset`.
    func read(at offset: UInt64, length: Int) throws(ConveyorError) -> [UInt8] {
        var failure: ConveyorError?
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
            if FileStoreIO.readAll(descriptor, UnsafeMutableRawBufferPointer(buffer), at: offset) {
                count = length
            } else {
                failure = FileStoreIO.error("cannot read \(length) bytes at offset \(offset) of the journal segment '\(path)'")
                count = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Closes the descriptor.
    func close() { posixClose(descriptor) }
}

/// A read-only memory map of a whole file, for scanning a segment when the store opens.
struct MappedFile {
    let base: UnsafeMutableRawPointer?
    let count: Int

    /// Maps the first `count` bytes of the file behind `descriptor` (nothing for an empty file).
    init(descriptor: Int32, count: Int, path: String) throws(ConveyorError) {
        self.count = count
        guard count > 0 else {
            base = nil
            return
        }
        guard let mapped = mmap(nil, count, PROT_READ, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            throw FileStoreIO.error("cannot map the journal segment '\(path)' into memory")
        }
        base = mapped
    }

    /// The mapped bytes.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Unmaps the file.
    func unmap() {
        if let base { munmap(base, count) }
    }
}

/// Thin, error-checked wrappers over the POSIX calls the file store makes (and, for
/// ``writeAll(_:_:at:)``, the LMDB store's delivery log).
package enum FileStoreIO {
    /// A storage error for the failed call, with `strerror(errno)` appended.
    static func error(_ what: String) -> ConveyorError {
        let code = errno
        let reason = String(cString: strerror(code))
        let advice = code == ENOSPC || code == EFBIG || code == EDQUOT
            ? "; free disk space and retry: nothing of the failed change was stored" : ""
        return ConveyorError(.storage, "\(what): \(reason)\(advice)")
    }

    /// `pwrite` until everything is written or a call fails.
    package static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return false }
            let result = pwrite(descriptor, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if result < 0 {
                if errno == EINTR { continue }
                return false
            }
            if result == 0 { return false }
            done += result
        }
        return true
    }

    /// Writes zeros over `start..<end` of a file (no sync), in writes of at most 1 MiB.
    ///
    /// A log keeps its file filled with zeros ahead of its records so that a record overwrites
    /// blocks the file system has allocated already: the sync of a commit then flushes the data
    /// alone, without the file's size and block map, which costs about half as much here
    /// (`conveyor bench --workload W2` prints both floors). `fallocate` would not do: the blocks it
    /// reserves are marked unwritten, and the first write to each changes the block map again.
    package static func writeZeros(_ descriptor: Int32, from start: UInt64, to end: UInt64) -> Bool {
        let zeros = [UInt8](repeating: 0, count: Int(min(1 << 20, end > start ? end - start : 0)))
        var position = start
        while position < end {
            let count = Int(min(UInt64(zeros.count), end - position))
            let written = zeros.withUnsafeBytes { writeAll(descriptor, UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: position) }
            guard written else { return false }
            position += UInt64(count)
        }
        return true
    }

    /// `pread` until the buffer is full; `false` on error or end of file.
    static func readAll(_ descriptor: Int32, _ bytes: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Bool {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return false }
            let result = pread(descriptor, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if result < 0 {
                if errno == EINTR { continue }
                return false
            }
            if result == 0 { return false }
            done += result
        }
        return true
    }

    /// Flushes a file's data (`fdatasync`, or `fsync` on Darwin).
    static func syncData(_ descriptor: Int32) -> Bool {
        #if canImport(Darwin)
        return fsync(descriptor) == 0
        #else
        return fdatasync(descriptor) == 0
        #endif
    }

    /// Starts writing a range of a file to the disk without waiting (Linux's `sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`; elsewhere nothing): work done between this and the sync that
    /// follows overlaps the disk's write, and the sync waits only for what is left. Only a hint:
    /// the sync alone makes the range durable. Ranges under ``writebackThreshold`` are left to the
    /// sync.
    package static func startWriteback(_ descriptor: Int32, offset: Int, length: Int) {
        #if os(Linux)
        guard length >= writebackThreshold else { return }
        _ = syncFileRange?(descriptor, Int64(offset), Int64(length), 2 /* SYNC_FILE_RANGE_WRITE */)
        #endif
    }

    /// The range from which ``startWriteback(_:offset:length:)`` starts the disk's write: below
    /// it (W2's records of a send and an acknowledgement) there is next to nothing to overlap,
    /// and the call is one more system call. (W6's drain on LMDB, records of 100 removals of ~2 KB,
    /// measured the same with and without it.)
    package static let writebackThreshold = 1 << 10

    #if os(Linux)
    /// `sync_file_range`, which Swift's Glibc module does not declare, looked up once.
    private static let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    }()
    #endif

    /// Flushes a directory, so that files created, renamed or deleted in it stay so after a crash.
    static func syncDirectory(_ path: String) {
        let descriptor = posixOpen(path, O_RDONLY, 0)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        posixClose(descriptor)
    }
}

/// `open(2)`, named so it does not clash with store methods called `open`.
@inline(__always)
func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    #if canImport(Glibc)
    Glibc.open(path, flags | O_CLOEXEC, mode)
    #else
    Darwin.open(path, flags | O_CLOEXEC, mode)
    #endif
}

/// `close(2)`, named so it does not clash with store methods called `close`.
@inline(__always)
func posixClose(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}
