/// CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`), the checksum that frames every journal
/// record and the index snapshot (and, in `ConveyorLMDB`, the records of the LMDB store's delivery log).
///
/// Computed eight bytes at a time with eight lookup tables ("slicing by 8"), built once on first
/// use, which checks a gigabyte of journal in well under a second when a store is reopened after a
/// crash.
package enum CRC32 {
    /// Eight tables of 256 entries each, one after the other: table `k` gives the CRC contribution
    /// of a byte followed by `k` zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 {
                value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
            }
            tables[index] = value
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The CRC of `bytes`, continuing from `crc` (the CRC of the bytes before them; 0 to start).
    /// - Parameters:
    ///   - bytes: The bytes to add.
    ///   - crc: The CRC so far.
    /// - Returns: The CRC of everything so far followed by `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        tables.withUnsafeBufferPointer { table in
            var value = ~crc
            guard var pointer = bytes.baseAddress else { return crc }
            var remaining = bytes.count
            while remaining >= 8 {
                let low = UInt32(littleEndian: pointer.loadUnaligned(as: UInt32.self)) ^ value
                let high = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                value = table[7 * 256 + Int(low & 0xFF)]
                    ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                    ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)]
                    ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)]
                    ^ table[Int(high >> 24)]
                pointer += 8
                remaining -= 8
            }
            while remaining > 0 {
                let byte = pointer.load(as: UInt8.self)
                value = (value >> 8) ^ table[Int((value ^ UInt32(byte)) & 0xFF)]
                pointer += 1
                remaining -= 1
            }
            return ~value
        }
    }

    /// The CRC of an array of bytes, continuing from `crc`.
    /// - Parameters:
    ///   - bytes: The bytes to add.
    ///   - crc: The CRC so far.
    /// - Returns: The CRC of everything so far followed by `bytes`.
    package static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}
