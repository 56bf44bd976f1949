import Foundation

/// Building and reading the fixed-size keys of the schema (see ``LMDBDatabases``), on the stack:
/// no allocation per key.
enum LMDBKey {
    /// Lends the 8-byte big-endian key of a sequence number or destination ID.
    @inline(__always)
    static func with<R, E: Error>(
        _ number: UInt64, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        var key = number.bigEndian
        return try withUnsafeBytes(of: &key) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Lends the 16-byte reference key: destination ID then sequence, both big-endian.
    @inline(__always)
    static func with<R, E: Error>(
        destination: UInt64, sequence: UInt64, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        var key = (destination.bigEndian, sequence.bigEndian)
        return try withUnsafeBytes(of: &key) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Lends an ASCII metadata key.
    @inline(__always)
    static func with<R, E: Error>(_ name: StaticString, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// Reads an 8-byte big-endian number, or `nil` if `bytes` is not 8 bytes long.
    static func number(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }

    /// Reads a reference key, or `nil` if `bytes` is not 16 bytes long.
    static func reference(_ bytes: UnsafeRawBufferPointer) -> (destination: UInt64, sequence: UInt64)? {
        guard bytes.count == 16 else { return nil }
        return (UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }
}

/// Little-endian fixed-width values (counts, metadata).
enum LMDBValue {
    /// Lends the little-endian bytes of `value`.
    @inline(__always)
    static func with<T: FixedWidthInteger, R, E: Error>(
        _ value: T, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        var bytes = value.littleEndian
        return try withUnsafeBytes(of: &bytes) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Reads a little-endian `T`, or `nil` if `bytes` has the wrong length.
    static func read<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, as type: T.Type) -> T? {
        guard bytes.count == MemoryLayout<T>.size else { return nil }
        return T(littleEndian: bytes.loadUnaligned(as: T.self))
    }
}

/// The value of a `references` entry: the delivery count, then the message's body size (so that a
/// queue's size is known from its references alone, without reading a body). Stores written before
/// the size was added hold only the count; their size reads as 0.
struct ReferenceValue {
    var deliveryCount: UInt32
    var bodyBytes: UInt32

    /// Lends the 8 little-endian bytes of the value.
    @inline(__always)
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var bytes = (deliveryCount.littleEndian, bodyBytes.littleEndian)
        return try withUnsafeBytes(of: &bytes) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Reads a value of 8 bytes (or 4, count only); `nil` for any other length.
    static func read(_ bytes: UnsafeRawBufferPointer) -> ReferenceValue? {
        switch bytes.count {
        case 8:
            ReferenceValue(
                deliveryCount: UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)),
                bodyBytes: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        case 4:
            ReferenceValue(deliveryCount: UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)), bodyBytes: 0)
        default:
            nil
        }
    }
}

extension ContiguousBytes {
    /// `withUnsafeBytes` with a typed error (the standard one only rethrows `any Error`).
    @inline(__always)
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }
}
