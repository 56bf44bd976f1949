import Conveyor

/// The on-disk format of one record of the ``DeliveryLog``: one `recordDeliveries` batch.
///
/// ```
/// length      u32 LE   bytes after the checksum: 8 + 20 × entries (at least one entry)
/// checksum    u32 LE   CRC-32 of the length field, then of every byte after the checksum
/// generation  u64 LE   the log generation the record belongs to (see ``DeliveryLog``)
/// entries     destination ID u64 LE, sequence u64 LE, delivery count u32 LE; 20 bytes each
/// ```
///
/// The checksum covers the length, so a length damaged by a torn write is caught as well as damaged
/// entries; a length of zero bytes (a file's unwritten tail reads as zeros) is never valid.
enum DeliveryLogRecord {
    /// The bytes before the entries: length, checksum, generation.
    static let headerSize = 16
    /// The bytes of one entry.
    static let entrySize = 20
    /// The largest length accepted when reading: far above any batch a consumer prefetches, so a
    /// larger value can only be damage.
    static let maximumLength = 64 << 20

    /// Appends one record to `buffer`.
    /// - Parameters:
    ///   - entries: The delivery counts, at least one.
    ///   - generation: The generation of the log the record is appended in.
    ///   - buffer: Where the record goes (after what it already holds).
    static func encode(_ entries: [(key: DeliveryLog.Key, count: UInt32)], generation: UInt64, into buffer: inout [UInt8]) {
        RecordFraming.append(contentSize: 8 + entries.count * entrySize, to: &buffer) { writer in
            writer.put(generation)
            for entry in entries {
                writer.put(entry.key.destination)
                writer.put(entry.key.sequence)
                writer.put(entry.count)
            }
        }
    }

    /// Reads the records of one log file from its start, calling `body` for each, in order.
    ///
    /// Stops at the first record that is incomplete, fails its checksum or has an impossible length,
    /// and at a record whose generation is lower than the one before it. None of these is an error:
    /// the file is written without a sync and a crash (of the process, or of the machine) can leave
    /// a partial record or unwritten blocks at its end; and a file is emptied by writing over it
    /// from its start (see ``DeliveryLog``), so older, folded records may follow the newest ones,
    /// with a lower generation or out of step. Whatever follows such a point is a torn tail,
    /// never a record whose writer was told it succeeded after a process crash. (After a power
    /// loss, records past a torn one may be lost; the store's contract allows losing those counts.)
    /// - Parameters:
    ///   - file: The file's bytes.
    ///   - body: Called with each record's generation and its entries.
    /// - Returns: The length of the valid prefix (where a torn tail starts, or the file's length).
    static func read(
        _ file: UnsafeRawBufferPointer, _ body: (UInt64, [(key: DeliveryLog.Key, count: UInt32)]) -> Void
    ) -> Int {
        var offset = 0
        var lastGeneration: UInt64 = 0
        var entries: [(key: DeliveryLog.Key, count: UInt32)] = []
        while let covered = RecordFraming.contents(of: file, at: offset, isValidLength: { length in
            length >= 8 + entrySize && length <= maximumLength && (length - 8) % entrySize == 0
        }) {
            let length = covered.count
            let generation = UInt64(littleEndian: covered.loadUnaligned(as: UInt64.self))
            guard generation >= lastGeneration else { break }
            lastGeneration = generation
            entries.removeAll(keepingCapacity: true)
            var position = 8
            while position < length {
                let key = DeliveryLog.Key(
                    destination: UInt64(littleEndian: covered.loadUnaligned(fromByteOffset: position, as: UInt64.self)),
                    sequence: UInt64(littleEndian: covered.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self)))
                let count = UInt32(littleEndian: covered.loadUnaligned(fromByteOffset: position + 16, as: UInt32.self))
                entries.append((key, count))
                position += entrySize
            }
            body(generation, entries)
            offset += 8 + length
        }
        return offset
    }
}
