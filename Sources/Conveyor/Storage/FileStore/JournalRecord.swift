/// The journal's record format: how a committed batch is framed on disk and read back.
///
/// Every record is one frame:
/// ```
/// u32 magic "CVJ1" · u32 payload length · u64 group start · u32 CRC-32 · payload
/// ```
/// all little-endian. The CRC covers the length, the group start and the payload, so a damaged
/// length is caught too. The group start is the segment offset where the write that carried the
/// record began (several commits written together share it); recovery uses it to tell a write torn
/// by a crash (damage inside the last, unfinished write) from damage to data written before.
///
/// The payload of a batch record is `u8 kind (1) · varint operation count · operations`, one
/// operation per ``StoreOperation`` plus two kinds written only by compaction:
/// ```
/// 1 add            varint sequence · varint target count · key × count · u32 body length · body
/// 2 remove         varint sequence · key
/// 3 delivery count varint sequence · key · varint count
/// 4 save sub.      varint length · subscription record (MessageCodec)
/// 5 delete sub.    key (a subscription key)
/// 6 purge          key
/// 7 message state  varint sequence · varint target count · (key · varint count) × count · u32 body length · body
/// 8 highest        varint sequence
/// ```
/// A key is `varint length · MessageCodec queue key`; a body is a ``MessageCodec`` message. One
/// record holds a whole batch, so a batch is all or nothing on recovery: its CRC checks or it is
/// not applied. *Message state* replaces whatever the journal said about a message before with its
/// live references and delivery counts, so compaction can copy a message forward and drop the
/// segment it came from.
enum JournalRecord {
    /// `"CVJ1"` read as a little-endian `UInt32`.
    static let magic: UInt32 = 0x314A_5643
    /// The size of a frame header.
    static let headerSize = 20
    /// The largest payload a record may have (1 GiB); a length beyond it is damage.
    static let maximumPayload = 1 << 30
    /// The payload kind of a batch record.
    static let batchKind: UInt8 = 1

    enum Tag {
        static let add: UInt8 = 1
        static let remove: UInt8 = 2
        static let deliveryCount: UInt8 = 3
        static let saveSubscription: UInt8 = 4
        static let deleteSubscription: UInt8 = 5
        static let purge: UInt8 = 6
        static let messageState: UInt8 = 7
        static let highest: UInt8 = 8
    }

    /// A frame header as read from disk, not yet checked against its payload.
    struct Header {
        var magic: UInt32
        var length: Int
        var groupStart: UInt64
        var crc: UInt32

        /// Reads a header at the start of `bytes` (which must hold at least ``headerSize`` bytes).
        init(_ bytes: UnsafeRawBufferPointer) {
            magic = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            groupStart = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        }
    }

    /// Whether a complete, undamaged record starts at `offset` of `file`; returns its payload length.
    /// - Parameters:
    ///   - file: A whole segment (or any byte range holding records).
    ///   - offset: Where the record would start.
    /// - Returns: The header when magic, length and CRC all check; `nil` otherwise.
    static func validRecord(in file: UnsafeRawBufferPointer, at offset: Int) -> Header? {
        guard offset >= 0, file.count - offset >= headerSize else { return nil }
        let header = Header(UnsafeRawBufferPointer(rebasing: file[offset..<(offset + headerSize)]))
        guard header.magic == magic, header.length > 0, header.length <= maximumPayload,
            file.count - offset - headerSize >= header.length
        else { return nil }
        let covered = UnsafeRawBufferPointer(rebasing: file[(offset + 4)..<(offset + 16)])
        let payload = UnsafeRawBufferPointer(
            rebasing: file[(offset + headerSize)..<(offset + headerSize + header.length)])
        let crc = CRC32.checksum(payload, continuing: CRC32.checksum(covered))
        return crc == header.crc ? header : nil
    }
}

/// Appends framed records to a byte buffer; see ``JournalRecord`` for the format.
struct JournalWriter {
    /// The bytes written so far.
    var buffer: [UInt8] = []

    /// Starts a record and returns the position of its header, for ``finishRecord(at:)``.
    mutating func beginRecord(groupStart: UInt64) -> Int {
        let start = buffer.count
        fixed(JournalRecord.magic)
        fixed(UInt32(0))
        fixed(groupStart)
        fixed(UInt32(0))
        return start
    }

    /// Fills in the length and CRC of the record started at `start`.
    mutating func finishRecord(at start: Int) {
        let length = buffer.count - start - JournalRecord.headerSize
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(truncatingIfNeeded: length).littleEndian, toByteOffset: start + 4, as: UInt32.self)
            let covered = UnsafeRawBufferPointer(rebasing: raw[(start + 4)..<(start + 16)])
            let payload = UnsafeRawBufferPointer(rebasing: raw[(start + JournalRecord.headerSize)...])
            let crc = CRC32.checksum(payload, continuing: CRC32.checksum(covered))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: start + 16, as: UInt32.self)
        }
    }

    /// Removes everything from `position` on (a record that turned out not to be needed).
    mutating func truncate(to position: Int) {
        buffer.removeSubrange(position...)
    }

    mutating func byte(_ value: UInt8) { buffer.append(value) }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.append(UInt8(value))
    }

    mutating func fixed<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    mutating func bytes(_ value: [UInt8]) {
        varint(UInt64(value.count))
        buffer.append(contentsOf: value)
    }

    /// Writes `u32 length · message` for an encoded message and returns where the message starts
    /// and its length.
    mutating func body(_ encoded: ArraySlice<UInt8>) -> (start: Int, length: Int) {
        fixed(UInt32(truncatingIfNeeded: encoded.count))
        let start = buffer.count
        buffer.append(contentsOf: encoded)
        return (start, encoded.count)
    }
}

/// Reads the payload of one record; every read checks bounds and fails with a description of
/// what is wrong, which the caller turns into a storage error naming the file and offset.
struct JournalReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte() throws(JournalFormatError) -> UInt8 {
        guard offset < bytes.count else { throw JournalFormatError("record ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() throws(JournalFormatError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw JournalFormatError("varint too long") }
            result |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func u32() throws(JournalFormatError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw JournalFormatError("record ends early") }
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func slice(_ length: Int) throws(JournalFormatError) -> UnsafeRawBufferPointer {
        guard length >= 0, bytes.count - offset >= length else { throw JournalFormatError("record ends early") }
        defer { offset += length }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }

    /// A `varint length · bytes` field.
    mutating func lengthPrefixed() throws(JournalFormatError) -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else { throw JournalFormatError("field longer than its record") }
        return try slice(Int(length))
    }

    /// A `u32 length · body` field; returns where the body starts (relative to the payload) and its length.
    mutating func body() throws(JournalFormatError) -> (start: Int, length: Int) {
        let length = Int(try u32())
        let start = offset
        _ = try slice(length)
        return (start, length)
    }
}

/// What is wrong with a record whose frame checked but whose payload does not make sense (written
/// by a newer format, or damaged in a way the CRC happened not to catch).
struct JournalFormatError: Error {
    let problem: String
    init(_ problem: String) { self.problem = problem }
}
