import Conveyor

/// The on-disk format of one record of the ``CommitLog``: the operations of one group commit.
///
/// ```
/// length      u32 LE   bytes after the checksum: 8 + the operations (at least one)
/// checksum    u32 LE   CRC-32 of the length field, then of every byte after the checksum
/// epoch       u64 LE   the log's epoch: the checkpoint count the record follows (see ``CommitLog``)
/// operations  one after another, each a tag byte and its fields (all integers LE):
///   1 add         sequence u64, destinations u16, destination IDs u64 each,
///                 body length u32, the message as `MessageCodec` encodes it
///   2 remove      sequence u64, destination u64
///   3 set count   sequence u64, destination u64, count u32
///   4 raise count sequence u64, destination u64, count u32
///   5 folded      delivery-log generation u64
/// ```
///
/// The length and checksum are ``RecordFraming``'s: a torn write is caught wherever it tore, and a
/// length of zero (unwritten blocks read as zeros) is never valid.
enum CommitLogRecord {
    /// The largest length accepted when reading; larger can only be damage.
    static let maximumLength = 1 << 31

    private enum Tag: UInt8 {
        case add = 1, remove, setCount, raiseCount, folded
    }

    /// Appends one record to `buffer`.
    /// - Parameters:
    ///   - operations: The group's operations, in order.
    ///   - epoch: The log's current epoch.
    ///   - buffer: Where the record goes (after what it already holds).
    static func encode(_ operations: [LoggedOperation], epoch: UInt64, into buffer: inout [UInt8]) {
        var size = 8
        for operation in operations {
            switch operation {
            case .add(_, _, let encoded, let destinations): size += 1 + 8 + 2 + 8 * destinations.count + 4 + encoded.count
            case .remove: size += 1 + 8 + 8
            case .setDeliveryCount, .raiseDeliveryCount: size += 1 + 8 + 8 + 4
            case .foldedDeliveries: size += 1 + 8
            }
        }
        RecordFraming.append(contentSize: size, to: &buffer) { writer in
            writer.put(epoch)
            for operation in operations {
                switch operation {
                case .add(let sequence, _, let encoded, let destinations):
                    writer.put(Tag.add.rawValue)
                    writer.put(sequence)
                    writer.put(UInt16(destinations.count))
                    for destination in destinations { writer.put(destination) }
                    writer.put(UInt32(encoded.count))
                    writer.put(encoded)
                case .remove(let sequence, let destination):
                    writer.put(Tag.remove.rawValue)
                    writer.put(sequence)
                    writer.put(destination)
                case .setDeliveryCount(let sequence, let destination, let count):
                    writer.put(Tag.setCount.rawValue)
                    writer.put(sequence)
                    writer.put(destination)
                    writer.put(count)
                case .raiseDeliveryCount(let sequence, let destination, let count):
                    writer.put(Tag.raiseCount.rawValue)
                    writer.put(sequence)
                    writer.put(destination)
                    writer.put(count)
                case .foldedDeliveries(let generation):
                    writer.put(Tag.folded.rawValue)
                    writer.put(generation)
                }
            }
        }
    }

    /// Reads the records of the current epoch from the start of a log file, calling `body` with
    /// each record's operations, in order.
    ///
    /// Stops, without error, at the first record that is incomplete, fails its checksum or has an
    /// impossible length, and at the first record of another epoch than `epoch`: the file is
    /// written over from its start after every checkpoint (see ``CommitLog``), so what follows the
    /// newest records is either unwritten, torn, or older records already in the database.
    /// - Parameters:
    ///   - file: The file's bytes.
    ///   - epoch: The epoch of the records to read: one more than the checkpoints stored.
    ///   - body: Called with each record's operations.
    /// - Returns: How many bytes of valid records of `epoch` the file starts with.
    /// - Throws: ``ConveyorError/Code/storage`` if a record with a valid checksum cannot be decoded
    ///   (written by an incompatible version, or damage the checksum missed).
    static func read(
        _ file: UnsafeRawBufferPointer, epoch: UInt64, _ body: ([LoggedOperation]) -> Void
    ) throws(ConveyorError) -> Int {
        var offset = 0
        while let covered = RecordFraming.contents(of: file, at: offset, isValidLength: { $0 > 8 && $0 <= maximumLength }),
              UInt64(littleEndian: covered.loadUnaligned(as: UInt64.self)) == epoch {
            body(try operations(in: UnsafeRawBufferPointer(rebasing: covered[8...])))
            offset += RecordFraming.headerSize + covered.count
        }
        return offset
    }

    private static func operations(in bytes: UnsafeRawBufferPointer) throws(ConveyorError) -> [LoggedOperation] {
        var reader = Reader(bytes: bytes)
        var operations: [LoggedOperation] = []
        while !reader.isAtEnd {
            guard let tag = Tag(rawValue: try reader.read(UInt8.self)) else {
                throw ConveyorError(.storage, "the commit log holds an operation of unknown kind")
            }
            switch tag {
            case .add:
                let sequence = try reader.read(UInt64.self)
                let count = Int(try reader.read(UInt16.self))
                var destinations: [UInt64] = []
                destinations.reserveCapacity(count)
                for _ in 0..<count { destinations.append(try reader.read(UInt64.self)) }
                let length = Int(try reader.read(UInt32.self))
                let encoded = try reader.bytes(length)
                let message = try MessageCodec.decodeMessage(encoded)
                operations.append(.add(sequence: sequence, message: message, encoded: ArraySlice(encoded), destinations: destinations))
            case .remove:
                operations.append(.remove(sequence: try reader.read(UInt64.self), destination: try reader.read(UInt64.self)))
            case .setCount:
                operations.append(.setDeliveryCount(
                    sequence: try reader.read(UInt64.self), destination: try reader.read(UInt64.self),
                    count: try reader.read(UInt32.self)))
            case .raiseCount:
                operations.append(.raiseDeliveryCount(
                    sequence: try reader.read(UInt64.self), destination: try reader.read(UInt64.self),
                    count: try reader.read(UInt32.self)))
            case .folded:
                operations.append(.foldedDeliveries(generation: try reader.read(UInt64.self)))
            }
        }
        return operations
    }

    /// Reads fields one after another, refusing to read past the end.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        var isAtEnd: Bool { position >= bytes.count }

        mutating func read<T: FixedWidthInteger>(_: T.Type) throws(ConveyorError) -> T {
            let raw = try self.bytes(MemoryLayout<T>.size)
            return T(littleEndian: raw.loadUnaligned(as: T.self))
        }

        mutating func bytes(_ count: Int) throws(ConveyorError) -> UnsafeRawBufferPointer {
            guard count >= 0, bytes.count - position >= count else {
                throw ConveyorError(.storage, "the commit log holds a record that ends in the middle of an operation")
            }
            defer { position += count }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        }
    }
}
