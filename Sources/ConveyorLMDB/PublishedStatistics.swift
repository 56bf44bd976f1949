import CLMDB
import Conveyor

/// A process's counters as it publishes them to the other members of its group: one value per
/// member in the `statistics` database of the ``ClaimsEnvironment``, rewritten whole when they
/// change (see ``LMDBStore/publishStatisticsIfChanged()``).
///
/// Layout: a format byte (1), then per queue or subscription the length of its encoded key (u32
/// LE), the key (``MessageCodec``), and eight counters (i64 LE): enqueued, dequeued, expired,
/// dead-lettered, dropped, consumers, in flight, in-flight bytes. Keys are values here, not LMDB
/// keys, so a name of any length fits.
enum PublishedStatistics {
    private static let format: UInt8 = 1
    private static let counterCount = 8

    /// Encodes a process's counters.
    static func encode(_ counters: [StoreQueueKey: DestinationCounters]) -> [UInt8] {
        var bytes: [UInt8] = [format]
        for (key, value) in counters {
            let encodedKey = MessageCodec.encode(key)
            append(UInt32(encodedKey.count), to: &bytes)
            bytes.append(contentsOf: encodedKey)
            for counter in [value.enqueued, value.dequeued, value.expired, value.deadLettered, value.dropped,
                            value.consumers, value.inFlight, value.inFlightBytes] {
                append(Int64(counter), to: &bytes)
            }
        }
        return bytes
    }

    /// Decodes what ``encode(_:)`` wrote.
    /// - Returns: The counters, or `nil` if the bytes are not a complete encoding (the claims
    ///   environment is not synced, so a machine crash may leave anything; the callers skip it).
    static func decode(_ bytes: UnsafeRawBufferPointer) -> [StoreQueueKey: DestinationCounters]? {
        guard bytes.first == format else { return nil }
        var offset = 1
        var counters: [StoreQueueKey: DestinationCounters] = [:]
        while offset < bytes.count {
            guard offset + 4 <= bytes.count else { return nil }
            let keyLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += 4
            let end = offset + keyLength + counterCount * 8
            guard keyLength <= bytes.count, end <= bytes.count,
                  let key = try? MessageCodec.decodeQueueKey(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + keyLength]))
            else { return nil }
            offset += keyLength
            var values: [Int] = []
            for _ in 0..<counterCount {
                values.append(Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self))))
                offset += 8
            }
            counters[key, default: .zero].add(DestinationCounters(
                enqueued: values[0], dequeued: values[1], expired: values[2], deadLettered: values[3], dropped: values[4],
                consumers: values[5], inFlight: values[6], inFlightBytes: values[7]))
        }
        return counters
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

extension ClaimsTable {
    /// Replaces a member's published counters (an empty set deletes them).
    func publishStatistics(_ counters: [StoreQueueKey: DestinationCounters], of member: UInt64) throws(LMDBError) {
        guard !counters.isEmpty else {
            try removePublishedStatistics(of: member)
            return
        }
        let encoded = PublishedStatistics.encode(counters)
        try LMDBKey.with(member) { (key) throws(LMDBError) in
            try encoded.withBytes { (value) throws(LMDBError) in try transaction.put(databases.statistics, key, value) }
        }
    }

    /// Deletes a member's published counters, if any.
    func removePublishedStatistics(of member: UInt64) throws(LMDBError) {
        try LMDBKey.with(member) { (key) throws(LMDBError) in _ = try transaction.delete(databases.statistics, key) }
    }

    /// Every member's published counters (those that cannot be decoded are left out).
    func publishedStatistics() throws(LMDBError) -> [UInt64: [StoreQueueKey: DestinationCounters]] {
        try transaction.withCursor(databases.statistics) { (cursor) throws(LMDBError) in
            var result: [UInt64: [StoreQueueKey: DestinationCounters]] = [:]
            var entry = try cursor.first()
            while let current = entry {
                if let member = LMDBKey.number(current.key), let counters = PublishedStatistics.decode(current.value) {
                    result[member] = counters
                }
                entry = try cursor.next()
            }
            return result
        }
    }

    /// What decides which fold marks (``KeptStatisticsTable``) are still needed: see ``GroupView``.
    func groupView() throws(LMDBError) -> GroupView? {
        guard let group = try groupID() else { return nil }
        return GroupView(group: group, lastMember: try lastMemberID(), listed: Set(try members().map(\.id)))
    }
}

/// A group's identity and membership at one moment, read in one claims transaction: whose fold
/// marks a fold of the main environment keeps.
///
/// A member publishes counters only while it is listed (leaving and reaping unlist it and delete
/// its counters in one transaction), so the mark of a member that was not listed, and had already
/// joined, at that moment can never be needed again. Marks of other groups never are either.
struct GroupView {
    /// The group's ID.
    var group: UInt64
    /// The last member ID handed out: higher IDs joined after the view was read.
    var lastMember: UInt64
    /// The members listed.
    var listed: Set<UInt64>

    /// Whether the fold mark of `member` of `group` may still be needed.
    func keepsMark(group: UInt64, member: UInt64) -> Bool {
        group == self.group && (member > lastMember || listed.contains(member))
    }
}
