import Conveyor

/// The framing the store's side logs share (``DeliveryLogRecord``, ``CommitLogRecord``): a record is
///
/// ```
/// length      u32 LE   bytes after the checksum
/// checksum    u32 LE   CRC-32 of the length field, then of every byte after the checksum
/// ...         `length` bytes
/// ```
///
/// The checksum covers the length, so a length damaged by a torn write is caught as well as damaged
/// contents.
enum RecordFraming {
    /// The bytes before a record's contents.
    static let headerSize = 8

    /// Appends one record of `contentSize` bytes to `buffer`: `fill` stores the contents, field by
    /// field, through one pointer (appending them one by one cost more than the checksum), then the
    /// length and the checksum are filled in.
    static func append(contentSize: Int, to buffer: inout [UInt8], _ fill: (inout FieldWriter) -> Void) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: headerSize + contentSize))
        buffer.withUnsafeMutableBytes { raw in
            var writer = FieldWriter(raw: raw, position: start + headerSize)
            fill(&writer)
        }
        seal(&buffer, recordAt: start)
    }

    /// Fills in the length and the checksum of the record that starts at `start` in `buffer` and
    /// runs to its end (written with eight placeholder bytes first).
    static func seal(_ buffer: inout [UInt8], recordAt start: Int) {
        let length = UInt32(buffer.count - start - headerSize)
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: length.littleEndian, toByteOffset: start, as: UInt32.self)
            let checksum = CRC32.checksum(
                UnsafeRawBufferPointer(rebasing: raw[(start + headerSize)...]),
                continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4)])))
            raw.storeBytes(of: checksum.littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
    }

    /// The contents of the record at `offset` in `file`, or `nil` if it is incomplete, its length
    /// is not one `isValidLength` accepts, or its checksum is wrong.
    static func contents(
        of file: UnsafeRawBufferPointer, at offset: Int, isValidLength: (Int) -> Bool
    ) -> UnsafeRawBufferPointer? {
        guard file.count - offset >= headerSize else { return nil }
        let length = Int(UInt32(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        guard isValidLength(length), file.count - offset - headerSize >= length else { return nil }
        let stored = UInt32(littleEndian: file.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        let contents = UnsafeRawBufferPointer(rebasing: file[(offset + headerSize)..<(offset + headerSize + length)])
        let checksum = CRC32.checksum(
            contents, continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: file[offset..<(offset + 4)])))
        return checksum == stored ? contents : nil
    }
}

/// Stores little-endian fields one after another into a buffer sized for them (see
/// ``RecordFraming/append(contentSize:to:_:)``).
struct FieldWriter {
    let raw: UnsafeMutableRawBufferPointer
    var position: Int

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        raw.storeBytes(of: value.littleEndian, toByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
    }

    mutating func put(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: raw[position..<(position + source.count)]).copyMemory(from: source)
        }
        position += bytes.count
    }
}
