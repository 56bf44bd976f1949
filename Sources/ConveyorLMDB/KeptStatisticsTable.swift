import CLMDB
import Conveyor

/// The counters an LMDB store keeps for the processes that shared it and are gone, inside one
/// transaction of the main environment: the `statistics` and `statisticsFolds` databases (see
/// ``LMDBDatabases``).
///
/// `statistics` holds the cumulative counters of each queue or subscription (by destination ID).
/// A process's counters are *folded* into it once: by the process when it closes the store, by a
/// survivor when it dies, or by the first process of the next group. Folding and deleting the
/// published counters happen in two environments, so a fold also writes a *mark* for the member
/// in `statisticsFolds`: whoever later finds the member's published counters still there (it died
/// in between) sees the mark and does not fold them again; readers likewise skip them.
struct KeptStatisticsTable {
    let transaction: LMDBTransaction
    let databases: LMDBDatabases

    /// The kept counters of every queue and subscription that has some, by destination ID.
    func totals() throws(LMDBError) -> [UInt64: DestinationCounters] {
        try transaction.withCursor(databases.statistics) { (cursor) throws(LMDBError) in
            var result: [UInt64: DestinationCounters] = [:]
            var entry = try cursor.first()
            while let current = entry {
                guard let destination = LMDBKey.number(current.key), let counters = Self.read(current.value)
                else { throw .corrupted("kept statistics") }
                result[destination] = counters
                entry = try cursor.next()
            }
            return result
        }
    }

    /// Adds the cumulative counters of `counters` to a destination's kept ones.
    func add(_ counters: DestinationCounters, to destination: UInt64) throws(LMDBError) {
        try LMDBKey.with(destination) { (key) throws(LMDBError) in
            var total = DestinationCounters.zero
            if let raw = try transaction.get(databases.statistics, key) {
                guard let kept = Self.read(raw) else { throw .corrupted("kept statistics") }
                total = kept
            }
            total.add(counters.cumulative)
            var value = (UInt64(clamping: total.enqueued).littleEndian, UInt64(clamping: total.dequeued).littleEndian,
                         UInt64(clamping: total.expired).littleEndian, UInt64(clamping: total.deadLettered).littleEndian,
                         UInt64(clamping: total.dropped).littleEndian)
            try withUnsafeBytes(of: &value) { (raw) throws(LMDBError) in try transaction.put(databases.statistics, key, raw) }
        }
    }

    /// Whether the counters of `member` of `group` were folded already.
    func isFolded(member: UInt64, group: UInt64) throws(LMDBError) -> Bool {
        try Self.withMarkKey(group: group, member: member) { (key) throws(LMDBError) in
            try transaction.get(databases.statisticsFolds, key) != nil
        }
    }

    /// Marks the counters of `member` of `group` as folded.
    func markFolded(member: UInt64, group: UInt64) throws(LMDBError) {
        try Self.withMarkKey(group: group, member: member) { (key) throws(LMDBError) in
            try transaction.put(databases.statisticsFolds, key, UnsafeRawBufferPointer(start: key.baseAddress, count: 0))
        }
    }

    /// Deletes the fold marks `keeps` does not keep.
    func removeMarks(keeping keeps: (_ group: UInt64, _ member: UInt64) -> Bool) throws(LMDBError) {
        var unneeded: [(group: UInt64, member: UInt64)] = []
        try transaction.withCursor(databases.statisticsFolds) { (cursor) throws(LMDBError) in
            var entry = try cursor.first()
            while let current = entry {
                guard current.key.count == 16 else { throw .corrupted("statistics fold mark") }
                let group = UInt64(bigEndian: current.key.loadUnaligned(as: UInt64.self))
                let member = UInt64(bigEndian: current.key.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                if !keeps(group, member) { unneeded.append((group, member)) }
                entry = try cursor.next()
            }
        }
        for mark in unneeded {
            try Self.withMarkKey(group: mark.group, member: mark.member) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.statisticsFolds, key)
            }
        }
    }

    /// Reads the five cumulative counters (u64 LE each).
    private static func read(_ bytes: UnsafeRawBufferPointer) -> DestinationCounters? {
        guard bytes.count == 40 else { return nil }
        func counter(_ index: Int) -> Int {
            Int(clamping: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
        }
        return DestinationCounters(enqueued: counter(0), dequeued: counter(1), expired: counter(2), deadLettered: counter(3), dropped: counter(4))
    }

    /// Lends the 16-byte mark key: group ID then member ID, both big-endian.
    private static func withMarkKey<R>(
        group: UInt64, member: UInt64, _ body: (UnsafeRawBufferPointer) throws(LMDBError) -> R
    ) throws(LMDBError) -> R {
        var key = (group.bigEndian, member.bigEndian)
        return try withUnsafeBytes(of: &key) { (raw) throws(LMDBError) -> R in try body(raw) }
    }
}
