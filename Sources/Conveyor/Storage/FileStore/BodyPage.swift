/// The bodies of one page of references, read from the journal under the store's lock and decoded
/// after it is released.
///
/// Bodies that lie close together in one segment — ascending, at most 16 KiB apart, at most 4 MiB
/// from the first to the last — are read with one `pread`: a page of a queue written in order
/// costs a few system calls, not one a message.
struct BodyPage {
    /// The bytes of one read: a stretch of a segment file.
    struct Chunk {
        var bytes: [UInt8]
        var path: String
        /// Where `bytes` start in the segment file.
        var offset: UInt64
    }

    /// One reference of the page and where its body is among the chunks.
    struct Item {
        var sequence: UInt64
        var deliveryCount: UInt32
        var chunk: Int
        /// The body's offset within its chunk.
        var start: Int
        var length: Int
    }

    /// The most bytes between two bodies read together.
    static let maximumGap: UInt64 = 16 << 10
    /// The most bytes one read spans (a single larger body is read by itself).
    static let maximumSpan: UInt64 = 4 << 20

    var chunks: [Chunk] = []
    var items: [Item] = []

    /// Reads the bodies of `references` (in the page's order) from `segments` (ascending by number).
    /// - Throws: ``ConveyorError/Code/storage`` if a body lies outside its segment or the read fails.
    static func read(
        _ references: [(sequence: UInt64, deliveryCount: UInt32, location: BodyLocation)], from segments: [JournalSegment]
    ) throws(ConveyorError) -> BodyPage {
        var page = BodyPage()
        page.items.reserveCapacity(references.count)
        var first = 0
        while first < references.count {
            let location = references[first].location
            var end = location.offset + UInt64(location.length)
            var next = first + 1
            while next < references.count {
                let candidate = references[next].location
                let candidateEnd = candidate.offset + UInt64(candidate.length)
                guard candidate.segment == location.segment, candidate.offset >= end, candidate.offset - end <= maximumGap,
                    candidateEnd - location.offset <= maximumSpan
                else { break }
                end = candidateEnd
                next += 1
            }
            let segment = JournalSegment.position(of: location.segment, in: segments).map { segments[$0] }
            guard let segment, end <= segment.size else {
                throw ConveyorError(
                    .storage,
                    "the file store journal '\(segment?.path ?? "segment \(location.segment)")' is missing the message body at offset "
                        + "\(location.offset) (\(location.length) bytes); the index and the journal disagree")
            }
            let chunk = page.chunks.count
            page.chunks.append(Chunk(bytes: try segment.read(at: location.offset, length: Int(end - location.offset)),
                                     path: segment.path, offset: location.offset))
            for reference in references[first..<next] {
                page.items.append(Item(
                    sequence: reference.sequence, deliveryCount: reference.deliveryCount, chunk: chunk,
                    start: Int(reference.location.offset - location.offset), length: Int(reference.location.length)))
            }
            first = next
        }
        return page
    }

    /// Decodes every body.
    /// - Throws: ``ConveyorError/Code/storage`` naming the file and offset of a body that does not decode.
    func decode() throws(ConveyorError) -> [RecoveredMessage] {
        var result: [RecoveredMessage] = []
        result.reserveCapacity(items.count)
        for item in items {
            let chunk = chunks[item.chunk]
            let decoded = chunk.bytes.withUnsafeBytes { raw in
                Result { () throws(ConveyorError) -> Message in
                    try MessageCodec.decodeMessage(UnsafeRawBufferPointer(rebasing: raw[item.start..<(item.start + item.length)]))
                }
            }
            switch decoded {
            case .success(let message):
                result.append(RecoveredMessage(sequence: item.sequence, message: message, deliveryCount: Int(item.deliveryCount)))
            case .failure(let error):
                throw ConveyorError(
                    .storage,
                    "the file store journal '\(chunk.path)' holds a bad message at offset \(chunk.offset + UInt64(item.start)): "
                        + error.message,
                    underlying: error)
            }
        }
        return result
    }
}
