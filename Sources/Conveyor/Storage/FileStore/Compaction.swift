import Foundation
import Synchronization

/// Compaction: reclaiming the space of acknowledged messages.
///
/// The journal is only appended to, so acknowledged messages keep their space until the segment
/// that holds them goes. Compaction works on the oldest segment (never the active one): when less
/// than an eighth of it is still live, the live messages are copied forward into the active segment —
/// as one *message state* record that also carries every durable subscription and the highest
/// sequence, so nothing the old segment said is lost — the active segment is synced, and the old
/// file is deleted. Only ever the oldest: a later segment's acknowledgements may refer to messages
/// in earlier ones, so deleting a segment out of order could bring acknowledged messages back.
///
/// Why an eighth: queues are drained oldest first, so an old segment empties by itself; copying
/// it forward at half live (an earlier policy) copied half of every segment during a drain and
/// cost a third of the drain rate. An eighth still reclaims a segment pinned by a few old messages,
/// and bounds the journal at about eight times the live data. One step compacts one segment under
/// the store's lock, so producers wait at most for copying an eighth of a segment (8 MiB with the
/// default size); background compaction releases the lock between steps.
extension FileStore {
    /// Compacts every old segment that is mostly dead, oldest first, and returns how many segment
    /// files it deleted.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or a write, sync or delete fails.
    @discardableResult
    public func compact() throws(ConveyorError) -> Int {
        var deleted = 0
        while try compactionStep() {
            deleted += 1
        }
        return deleted
    }

    /// The bytes of all journal segment files, as they are now (for monitoring and tests).
    public var journalSize: UInt64 {
        core.withLock { core in core.segments.reduce(0) { $0 + $1.size } }
    }

    /// Queues a background compaction if the oldest segment is worth compacting.
    func scheduleCompactionIfWorthwhile(_ core: inout Core) {
        guard !core.compactionScheduled, oldestSegmentIsWorthCompacting(core) else { return }
        core.compactionScheduled = true
        compactionQueue.async { [weak self] in
            guard let self else { return }
            while true {
                if (try? self.compactionStep()) != true {
                    self.core.withLock { $0.compactionScheduled = false }
                    return
                }
            }
        }
    }

    /// One compaction step, with durable writes kept out (see ``FileStore/durableWrites``).
    private func compactionStep() throws(ConveyorError) -> Bool {
        try durableWrites.withLock { (_) throws(ConveyorError) -> Bool in
            try core.withLock { (core) throws(ConveyorError) -> Bool in try compactOldestSegment(&core) }
        }
    }

    private func oldestSegmentIsWorthCompacting(_ core: Core) -> Bool {
        guard core.segments.count >= 2, let oldest = core.segments.first else { return false }
        let live = core.index.usage[oldest.number]?.liveBytes ?? 0
        return live * 8 < oldest.size
    }

    /// Compacts the oldest segment if it is worth it; returns whether it deleted one.
    func compactOldestSegment(_ core: inout Core) throws(ConveyorError) -> Bool {
        guard core.isOpen else {
            throw ConveyorError(.storage, "the file store at '\(directory)' is closed; open a broker on it first")
        }
        if let failure = core.failure { throw failure }
        guard oldestSegmentIsWorthCompacting(core), let oldest = core.segments.first else { return false }

        let live = core.index.liveMessages(in: oldest.number)
        try rollSegmentIfFull(&core)
        guard var active = core.segments.popLast() else { return false }
        defer { core.segments.append(active) }
        let groupStart = active.size
        var writer = JournalWriter()
        let start = writer.beginRecord(groupStart: groupStart)
        writer.byte(JournalRecord.batchKind)
        writer.varint(UInt64(live.count + core.index.subscriptions.count + 1))
        var moved: [(sequence: UInt64, start: Int, length: Int)] = []
        moved.reserveCapacity(live.count)
        for message in live {
            let body = try oldest.read(at: message.entry.location.offset, length: Int(message.entry.location.length))
            writer.byte(JournalRecord.Tag.messageState)
            writer.varint(message.sequence)
            writer.varint(UInt64(message.references.count))
            for (key, count) in message.references {
                writer.bytes(core.index.keys.encoded[Int(key)])
                writer.varint(UInt64(count))
            }
            writer.fixed(UInt32(body.count))
            moved.append((message.sequence, writer.buffer.count, body.count))
            writer.buffer.append(contentsOf: body)
        }
        for record in core.index.subscriptions.values {
            writer.byte(JournalRecord.Tag.saveSubscription)
            writer.bytes(MessageCodec.encode(record))
        }
        writer.byte(JournalRecord.Tag.highest)
        writer.varint(core.index.highestSequence)
        writer.finishRecord(at: start)

        do throws(ConveyorError) {
            try active.append(writer.buffer)
            try active.sync()
        } catch {
            if active.size != groupStart { core.failure = error }
            throw error
        }
        for message in moved {
            core.index.relocate(
                message.sequence,
                to: BodyLocation(
                    segment: active.number, length: UInt32(truncatingIfNeeded: message.length),
                    offset: groupStart + UInt64(message.start)))
        }
        // The copies are on disk; the old segment can go.
        oldest.close()
        core.segments.removeFirst()
        core.index.forgetSegment(oldest.number)
        guard unlink(oldest.path) == 0 else {
            throw FileStoreIO.error("cannot delete the compacted journal segment '\(oldest.path)'")
        }
        FileStoreIO.syncDirectory(core.path)
        return true
    }
}
