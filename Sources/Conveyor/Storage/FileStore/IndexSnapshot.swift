import Foundation

/// The index as a clean ``FileStore/close()`` leaves it, so the next open need not scan the journal.
///
/// `index.snapshot` holds `"CVSNAP01"`, a CRC-32 of the rest, then (varints): every segment's
/// number and length, the highest sequence, the keys, the subscriptions, every live message's
/// sequence and body location, and every key's references, ascending, with their delivery counts.
/// It is used only if its CRC checks and every segment file has exactly the recorded number and
/// length, which is true only if nothing was written since the close; the store deletes it as soon
/// as it has been read, so a crash later always falls back to the scan.
enum IndexSnapshot {
    static let fileName = "index.snapshot"
    private static let magic = Array("CVSNAP01".utf8)

    /// Writes the snapshot (to a temporary file, synced, then renamed into place). Best effort: if
    /// it cannot be written, the next open scans the journal instead.
    static func write(_ index: JournalIndex, segments: [JournalSegment], directory: String) {
        var writer = JournalWriter()
        writer.buffer.reserveCapacity(64 + index.messages.count * 24)
        writer.varint(UInt64(segments.count))
        for segment in segments {
            writer.varint(UInt64(segment.number))
            writer.varint(segment.size)
        }
        writer.varint(index.highestSequence)
        writer.varint(UInt64(index.keys.count))
        for encoded in index.keys.encoded { writer.bytes(encoded) }
        writer.varint(UInt64(index.subscriptions.count))
        for record in index.subscriptions.values { writer.bytes(MessageCodec.encode(record)) }
        writer.varint(UInt64(index.messages.count))
        for (sequence, entry) in index.messages {
            writer.varint(sequence)
            writer.varint(UInt64(entry.location.segment))
            writer.varint(entry.location.offset)
            writer.varint(UInt64(entry.location.length))
        }
        for held in index.references {
            writer.varint(UInt64(held.count))
            held.forEachLive { sequence, count in
                writer.varint(sequence)
                writer.varint(UInt64(count))
            }
        }
        var file = magic
        withUnsafeBytes(of: CRC32.checksum(writer.buffer).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: writer.buffer)

        let path = directory + "/" + fileName
        let temporary = path + ".tmp"
        let descriptor = posixOpen(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return }
        let written = file.withUnsafeBytes { FileStoreIO.writeAll(descriptor, $0, at: 0) } && FileStoreIO.syncData(descriptor)
        posixClose(descriptor)
        guard written, rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
        FileStoreIO.syncDirectory(directory)
    }

    /// Deletes the snapshot (after it was read, or when it does not match).
    static func remove(directory: String) {
        if unlink(directory + "/" + fileName) == 0 { FileStoreIO.syncDirectory(directory) }
    }

    /// The index from the snapshot, or `nil` if there is none or it does not match `segments` exactly.
    static func read(directory: String, matching segments: [JournalSegment]) -> JournalIndex? {
        guard !segments.isEmpty, let data = FileManager.default.contents(atPath: directory + "/" + fileName) else { return nil }
        return data.withUnsafeBytes { raw -> JournalIndex? in
            guard raw.count >= 12, raw.prefix(8).elementsEqual(magic) else { return nil }
            let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let body = UnsafeRawBufferPointer(rebasing: raw[12...])
            guard CRC32.checksum(body) == crc else { return nil }
            return try? parse(body, matching: segments)
        }
    }

    private static func parse(_ body: UnsafeRawBufferPointer, matching segments: [JournalSegment]) throws(JournalFormatError) -> JournalIndex? {
        var reader = JournalReader(body)
        guard try reader.varint() == UInt64(segments.count) else { return nil }
        for segment in segments {
            guard try reader.varint() == UInt64(segment.number), try reader.varint() == segment.size else { return nil }
        }
        // The live bodies of each segment, by its position in `segments` (ascending by number).
        var usage = [JournalIndex.SegmentUsage](repeating: JournalIndex.SegmentUsage(), count: segments.count)
        var index = JournalIndex()
        index.noteHighest(try reader.varint())
        let keyCount = try reader.varint()
        for _ in 0..<keyCount { _ = try index.number(encoded: reader.lengthPrefixed()) }
        guard index.keys.count == keyCount else { return nil }
        let subscriptionCount = try reader.varint()
        for _ in 0..<subscriptionCount {
            guard let record = try? MessageCodec.decodeSubscription(reader.lengthPrefixed()) else { return nil }
            index.save(record)
        }
        let messageCount = try reader.varint()
        index.messages.reserveCapacity(Int(clamping: min(messageCount, UInt64(body.count))))
        for _ in 0..<messageCount {
            let sequence = try reader.varint()
            let segment = UInt32(truncatingIfNeeded: try reader.varint())
            let offset = try reader.varint()
            let length = UInt32(truncatingIfNeeded: try reader.varint())
            guard let position = JournalSegment.position(of: segment, in: segments), offset <= segments[position].size,
                UInt64(length) <= segments[position].size - offset,
                index.messages.updateValue(
                    JournalIndex.Entry(location: BodyLocation(segment: segment, length: length, offset: offset), references: 0),
                    forKey: sequence) == nil
            else { return nil }
            usage[position].liveMessages += 1
            usage[position].liveBytes += UInt64(length)
        }
        for key in 0..<index.keys.count {
            let count = try reader.varint()
            index.references[key].reserveCapacity(Int(clamping: min(count, UInt64(body.count))))
            for _ in 0..<count {
                let sequence = try reader.varint()
                guard index.references[key].insert(sequence, deliveryCount: UInt32(clamping: try reader.varint())),
                    let message = index.messages.index(forKey: sequence)
                else { return nil }
                index.messages.values[message].references += 1
                index.references[key].bodyBytes += Int(index.messages.values[message].location.length)
            }
        }
        guard reader.isAtEnd, !index.messages.values.contains(where: { $0.references == 0 }) else { return nil }
        for (position, segment) in segments.enumerated() where usage[position].liveMessages > 0 {
            index.usage[segment.number] = usage[position]
        }
        return index
    }
}
