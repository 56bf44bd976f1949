import Foundation

/// Reads a journal directory when a ``FileStore`` opens: finds the segments, and loads the index
/// from the snapshot of a clean close if it matches the files exactly, or else rebuilds it by
/// scanning every record. No body is read: the store reads them a page at a time later.
///
/// Scanning checks every record's frame and CRC. A record that does not check:
/// - in the last segment, with no valid record after it, or only records of the same unfinished
///   write (the group start in their header is at or before it): a write torn by a crash; the
///   segment is cut back to the last good record;
/// - anywhere else: damage to committed data; opening fails with a storage error naming the file
///   and offset, and nothing is cut or skipped.
struct JournalLoader {
    /// What the store starts with.
    struct Loaded {
        var segments: [JournalSegment]
        var index: JournalIndex
    }

    let directory: String
    /// The zero-fill ahead of a new segment's records.
    let preallocation: UInt64

    func load() throws(ConveyorError) -> Loaded {
        let numbers = try segmentNumbers()
        var segments: [JournalSegment] = []
        do throws(ConveyorError) {
            for number in numbers {
                segments.append(try JournalSegment.open(in: directory, number: number))
            }
            var index: JournalIndex
            if let snapshot = IndexSnapshot.read(directory: directory, matching: segments) {
                index = snapshot
            } else {
                index = JournalIndex()
                for position in segments.indices {
                    let validEnd = try scan(segments[position], isLast: position == segments.count - 1, into: &index)
                    if validEnd != segments[position].size { try segments[position].truncate(to: validEnd) }
                }
            }
            IndexSnapshot.remove(directory: directory)
            if segments.isEmpty || (segments.last?.size ?? 0) < UInt64(JournalSegment.headerSize) {
                if let broken = segments.popLast() {
                    // A segment created by a crashed process before its header reached the disk.
                    broken.close()
                    unlink(broken.path)
                }
                let next = try JournalSegment.create(in: directory, number: (segments.last?.number ?? 0) + 1, preallocation: preallocation)
                segments.append(next)
                try next.sync()
                FileStoreIO.syncDirectory(directory)
            }
            return Loaded(segments: segments, index: index)
        } catch {
            for segment in segments { segment.close() }
            throw error
        }
    }

    /// The numbers of the segment files in the directory, ascending.
    private func segmentNumbers() throws(ConveyorError) -> [UInt32] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory)
                .compactMap(JournalSegment.number(inFileName:)).sorted()
        } catch {
            throw ConveyorError(
                .storage, "cannot list the file store directory '\(directory)': \(error.localizedDescription)",
                underlying: error)
        }
    }

    /// Replays every record of a segment into the index, reading it through a memory map; returns
    /// where its valid records end.
    private func scan(_ segment: JournalSegment, isLast: Bool, into index: inout JournalIndex) throws(ConveyorError) -> UInt64 {
        let map = try MappedFile(descriptor: segment.descriptor, count: Int(segment.size), path: segment.path)
        defer { map.unmap() }
        return try scan(segment, map.bytes, isLast: isLast, into: &index)
    }

    private func scan(_ segment: JournalSegment, _ bytes: UnsafeRawBufferPointer, isLast: Bool,
                      into index: inout JournalIndex) throws(ConveyorError) -> UInt64 {
        if bytes.count < JournalSegment.headerSize {
            guard isLast else { throw corrupt(segment, at: 0, "the file is shorter than a segment header") }
            return 0
        }
        guard segment.hasValidHeader(bytes) else {
            // A segment whose header never reached the disk (the file grew, its data did not).
            if isLast, bytes.prefix(JournalSegment.headerSize).allSatisfy({ $0 == 0 }) { return 0 }
            throw corrupt(segment, at: 0, "the segment header is not that of segment \(segment.number)")
        }
        var offset = JournalSegment.headerSize
        while offset < bytes.count {
            guard let header = JournalRecord.validRecord(in: bytes, at: offset) else {
                let problem = Self.describeDamage(bytes, at: offset)
                guard isLast else { throw corrupt(segment, at: offset, problem) }
                if let later = Self.nextValidRecord(in: bytes, after: offset), later.header.groupStart > UInt64(offset) {
                    throw corrupt(
                        segment, at: offset,
                        "\(problem), yet a record written after it (at offset \(later.offset)) is intact, so this is not a torn write")
                }
                return UInt64(offset)
            }
            let payloadOffset = offset + JournalRecord.headerSize
            let payload = UnsafeRawBufferPointer(rebasing: bytes[payloadOffset..<(payloadOffset + header.length)])
            do {
                try index.replay(payload, payloadOffset: UInt64(payloadOffset), segment: segment.number)
            } catch {
                throw corrupt(segment, at: offset, "the record's contents are not understood (\(error.problem))")
            }
            offset = payloadOffset + header.length
        }
        return UInt64(offset)
    }

    /// The first intact record starting after `offset`, found by looking for the record magic.
    private static func nextValidRecord(in bytes: UnsafeRawBufferPointer, after offset: Int) -> (offset: Int, header: JournalRecord.Header)? {
        var position = offset + 1
        while position + JournalRecord.headerSize <= bytes.count {
            if UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)) == JournalRecord.magic,
                let header = JournalRecord.validRecord(in: bytes, at: position)
            {
                return (position, header)
            }
            position += 1
        }
        return nil
    }

    /// Says what is wrong with the record frame at `offset`.
    private static func describeDamage(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> String {
        guard bytes.count - offset >= JournalRecord.headerSize else {
            return "the record header is cut short (\(bytes.count - offset) of \(JournalRecord.headerSize) bytes)"
        }
        let header = JournalRecord.Header(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + JournalRecord.headerSize)]))
        if header.magic != JournalRecord.magic { return "no record starts here (bad magic)" }
        if header.length == 0 || header.length > JournalRecord.maximumPayload { return "the record length \(header.length) is invalid" }
        if bytes.count - offset - JournalRecord.headerSize < header.length {
            return "the record claims \(header.length) bytes but the file ends after \(bytes.count - offset - JournalRecord.headerSize)"
        }
        return "the record's CRC does not match its contents"
    }

    private func corrupt(_ segment: JournalSegment, at offset: Int, _ problem: String) -> ConveyorError {
        ConveyorError(
            .storage,
            "the file store journal '\(segment.path)' is corrupt at offset \(offset): \(problem). Refusing to open rather "
                + "than skip committed data; restore the directory from a backup, or move the damaged file away to "
                + "accept losing what it holds")
    }
}
