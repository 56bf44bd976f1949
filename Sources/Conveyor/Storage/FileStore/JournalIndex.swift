/// Where a message body lives in the journal: segment, offset of the encoded message, its length.
struct BodyLocation: Hashable, Sendable {
    /// The segment's number.
    var segment: UInt32
    /// The encoded message's length in bytes.
    var length: UInt32
    /// The offset of the encoded message in the segment file.
    var offset: UInt64
}

/// The queue and subscription keys a journal mentions, each with a small number and its encoding.
///
/// Records carry keys in their ``MessageCodec`` encoding; the index works with the numbers. The
/// table finds a key from its encoded bytes without allocating (a hash of the bytes, then a byte
/// comparison), which keeps replaying a long journal fast.
struct JournalKeyTable: Sendable {
    var keys: [StoreQueueKey] = []
    var encoded: [[UInt8]] = []
    private var numbers: [StoreQueueKey: UInt32] = [:]
    private var byHash: [UInt64: [UInt32]] = [:]
    /// The key looked up last: the operations of a batch mostly name one queue, and comparing with
    /// it (the same string storage) is cheaper than hashing the name again.
    private var last: (key: StoreQueueKey, number: UInt32)?

    var count: Int { keys.count }

    /// The number of `key`, registering it if new.
    mutating func number(for key: StoreQueueKey) -> UInt32 {
        if let last, last.key == key { return last.number }
        let number = numbers[key] ?? register(key, encoded: MessageCodec.encode(key))
        last = (key, number)
        return number
    }

    /// The number of the key encoded in `raw`, registering it if new.
    mutating func number(encoded raw: UnsafeRawBufferPointer) throws(JournalFormatError) -> UInt32 {
        let hash = Self.hash(raw)
        if let candidates = byHash[hash] {
            for number in candidates where encoded[Int(number)].withUnsafeBytes({ $0.elementsEqual(raw) }) {
                return number
            }
        }
        let key: StoreQueueKey
        do {
            key = try MessageCodec.decodeQueueKey(raw)
        } catch {
            throw JournalFormatError("bad queue key: \(error.message)")
        }
        return register(key, encoded: Array(raw))
    }

    /// The number of `key` if the table knows it.
    func existingNumber(for key: StoreQueueKey) -> UInt32? { numbers[key] }

    private mutating func register(_ key: StoreQueueKey, encoded bytes: [UInt8]) -> UInt32 {
        let number = UInt32(keys.count)
        keys.append(key)
        encoded.append(bytes)
        numbers[key] = number
        byHash[bytes.withUnsafeBytes { Self.hash($0) }, default: []].append(number)
        return number
    }

    /// FNV-1a over the bytes.
    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}

/// The file store's in-memory index: what the journal says is live, without the bodies.
///
/// Per message the index keeps where its body is and how many references it has (24 bytes plus
/// dictionary overhead); per queue or subscription the sequences it references with their delivery
/// counts, in sequence order (a ``ReferenceList``, 12 bytes a reference); and the durable
/// subscriptions. Bodies stay on disk and are read a page at a time, when the broker asks for them.
/// Per segment it counts the live bodies and their bytes, which tells compaction what to reclaim.
struct JournalIndex: Sendable {
    /// A live message: its body's place and how many queues and subscriptions still reference it.
    struct Entry: Sendable {
        var location: BodyLocation
        var references: UInt32
    }

    /// The live bodies in one segment.
    struct SegmentUsage: Sendable {
        var liveMessages = 0
        var liveBytes: UInt64 = 0
    }

    var messages: [UInt64: Entry] = [:]
    /// The references of each key, by key number: sequence → delivery count, in sequence order.
    var references: [ReferenceList] = []
    var keys = JournalKeyTable()
    var subscriptions: [SubscriptionKey: SubscriptionRecord] = [:]
    var highestSequence: UInt64 = 0
    var usage: [UInt32: SegmentUsage] = [:]

    // MARK: Keys

    /// The number of a key, registering it (and a reference table for it) if new.
    mutating func number(for key: StoreQueueKey) -> UInt32 {
        let number = keys.number(for: key)
        growReferences()
        return number
    }

    /// The number of an encoded key, registering it if new.
    mutating func number(encoded raw: UnsafeRawBufferPointer) throws(JournalFormatError) -> UInt32 {
        let number = try keys.number(encoded: raw)
        growReferences()
        return number
    }

    private mutating func growReferences() {
        while references.count < keys.count { references.append(ReferenceList()) }
    }

    // MARK: Changes

    /// Stores a message with a reference (delivery count 0) from each target.
    mutating func add(_ sequence: UInt64, at location: BodyLocation, targets: [UInt32]) {
        replace(sequence, at: location, references: targets.map { ($0, 0) })
    }

    /// Makes `sequence` exactly this: its body at `location`, referenced from these keys with these
    /// counts; whatever was recorded about it before is dropped.
    mutating func replace(
        _ sequence: UInt64, at location: BodyLocation, references newReferences: some Sequence<(UInt32, UInt32)>
    ) {
        if messages[sequence] != nil { drop(sequence) }
        noteHighest(sequence)
        var count: UInt32 = 0
        for (key, deliveries) in newReferences where references[Int(key)].insert(sequence, deliveryCount: deliveries) {
            references[Int(key)].bodyBytes += Int(location.length)
            count += 1
        }
        guard count > 0 else { return }
        messages[sequence] = Entry(location: location, references: count)
        usage[location.segment, default: SegmentUsage()].liveMessages += 1
        usage[location.segment, default: SegmentUsage()].liveBytes += UInt64(location.length)
    }

    /// Removes one reference; the message goes with its last one.
    mutating func remove(_ sequence: UInt64, from key: UInt32) {
        guard references[Int(key)].remove(sequence) != nil else { return }
        let length = release(sequence)
        references[Int(key)].bodyBytes -= length
    }

    /// Sets the delivery count of an existing reference; does nothing if there is none.
    mutating func setDeliveryCount(_ sequence: UInt64, in key: UInt32, to count: UInt32) {
        references[Int(key)].setDeliveryCount(sequence, to: count)
    }

    /// Creates or replaces a subscription record.
    mutating func save(_ record: SubscriptionRecord) { subscriptions[record.key] = record }

    /// Deletes a subscription and its references.
    mutating func deleteSubscription(_ key: SubscriptionKey, number: UInt32) {
        subscriptions[key] = nil
        purge(number)
    }

    /// Removes every reference a key holds.
    mutating func purge(_ key: UInt32) {
        let held = references[Int(key)]
        guard !held.isEmpty else { return }
        references[Int(key)] = ReferenceList()
        held.forEachLive { sequence, _ in release(sequence) }
    }

    /// Raises the highest sequence ever stored.
    mutating func noteHighest(_ sequence: UInt64) { highestSequence = max(highestSequence, sequence) }

    /// Forgets everything about the live bodies of a segment that is gone (used only when a
    /// segment has no live bodies left, so there is nothing to forget but its usage entry).
    mutating func forgetSegment(_ segment: UInt32) { usage[segment] = nil }

    /// Drops one reference count of a message, and the message with its last; returns its body length.
    @discardableResult
    private mutating func release(_ sequence: UInt64) -> Int {
        guard let position = messages.index(forKey: sequence) else { return 0 }
        let location = messages.values[position].location
        if messages.values[position].references > 1 {
            messages.values[position].references -= 1
        } else {
            messages.remove(at: position)
            subtractUsage(location)
        }
        return Int(location.length)
    }

    /// Removes a message and all its references.
    private mutating func drop(_ sequence: UInt64) {
        guard let entry = messages.removeValue(forKey: sequence) else { return }
        for key in references.indices where references[key].remove(sequence) != nil {
            references[key].bodyBytes -= Int(entry.location.length)
        }
        subtractUsage(entry.location)
    }

    private mutating func subtractUsage(_ location: BodyLocation) {
        guard var segment = usage[location.segment] else { return }
        segment.liveMessages -= 1
        segment.liveBytes -= min(segment.liveBytes, UInt64(location.length))
        usage[location.segment] = segment
    }

    // MARK: Queries

    /// The live messages whose bodies are in `segment`, with their references and counts.
    func liveMessages(in segment: UInt32) -> [(sequence: UInt64, entry: Entry, references: [(UInt32, UInt32)])] {
        var result: [(sequence: UInt64, entry: Entry, references: [(UInt32, UInt32)])] = []
        for (sequence, entry) in messages where entry.location.segment == segment {
            var held: [(UInt32, UInt32)] = []
            for key in references.indices {
                if let count = references[key].deliveryCount(of: sequence) { held.append((UInt32(key), count)) }
            }
            result.append((sequence, entry, held))
        }
        return result.sorted { $0.sequence < $1.sequence }
    }

    /// Moves a live message's body to a new place (after compaction copied it there).
    mutating func relocate(_ sequence: UInt64, to location: BodyLocation) {
        guard var entry = messages[sequence] else { return }
        subtractUsage(entry.location)
        if location.length != entry.location.length {
            let change = Int(location.length) - Int(entry.location.length)
            for key in references.indices where references[key].deliveryCount(of: sequence) != nil {
                references[key].bodyBytes += change
            }
        }
        entry.location = location
        messages[sequence] = entry
        usage[location.segment, default: SegmentUsage()].liveMessages += 1
        usage[location.segment, default: SegmentUsage()].liveBytes += UInt64(location.length)
    }

    // MARK: Replay

    /// Applies one batch record read from the journal.
    /// - Parameters:
    ///   - payload: The record's payload (its CRC already checked).
    ///   - payloadOffset: Where the payload starts in the segment file.
    ///   - segment: The segment's number.
    mutating func replay(_ payload: UnsafeRawBufferPointer, payloadOffset: UInt64, segment: UInt32) throws(JournalFormatError) {
        var reader = JournalReader(payload)
        let kind = try reader.byte()
        guard kind == JournalRecord.batchKind else { throw JournalFormatError("unknown record kind \(kind)") }
        let count = try reader.varint()
        var targets: [UInt32] = []
        var held: [(UInt32, UInt32)] = []
        for _ in 0..<count {
            let tag = try reader.byte()
            switch tag {
            case JournalRecord.Tag.add:
                let sequence = try reader.varint()
                let targetCount = try reader.varint()
                targets.removeAll(keepingCapacity: true)
                for _ in 0..<targetCount { targets.append(try number(encoded: reader.lengthPrefixed())) }
                let body = try reader.body()
                add(sequence, at: Self.location(body, payloadOffset, segment), targets: targets)
            case JournalRecord.Tag.remove:
                let sequence = try reader.varint()
                remove(sequence, from: try number(encoded: reader.lengthPrefixed()))
            case JournalRecord.Tag.deliveryCount:
                let sequence = try reader.varint()
                let key = try number(encoded: reader.lengthPrefixed())
                setDeliveryCount(sequence, in: key, to: UInt32(clamping: try reader.varint()))
            case JournalRecord.Tag.saveSubscription:
                let raw = try reader.lengthPrefixed()
                do throws(ConveyorError) {
                    save(try MessageCodec.decodeSubscription(raw))
                } catch {
                    throw JournalFormatError("bad subscription: \(error.message)")
                }
            case JournalRecord.Tag.deleteSubscription:
                let key = try number(encoded: reader.lengthPrefixed())
                guard case .subscription(let subscription) = keys.keys[Int(key)] else {
                    throw JournalFormatError("subscription deletion names a queue")
                }
                deleteSubscription(subscription, number: key)
            case JournalRecord.Tag.purge:
                purge(try number(encoded: reader.lengthPrefixed()))
            case JournalRecord.Tag.messageState:
                let sequence = try reader.varint()
                let targetCount = try reader.varint()
                held.removeAll(keepingCapacity: true)
                for _ in 0..<targetCount {
                    let key = try number(encoded: reader.lengthPrefixed())
                    held.append((key, UInt32(clamping: try reader.varint())))
                }
                let body = try reader.body()
                replace(sequence, at: Self.location(body, payloadOffset, segment), references: held)
            case JournalRecord.Tag.highest:
                noteHighest(try reader.varint())
            default:
                throw JournalFormatError("unknown operation \(tag)")
            }
        }
        guard reader.isAtEnd else { throw JournalFormatError("unexpected bytes after the last operation") }
    }

    private static func location(_ body: (start: Int, length: Int), _ payloadOffset: UInt64, _ segment: UInt32) -> BodyLocation {
        BodyLocation(segment: segment, length: UInt32(truncatingIfNeeded: body.length), offset: payloadOffset + UInt64(body.start))
    }

    // MARK: Reading

    /// What a broker learns at open: the subscriptions, every key holding references with their
    /// number and encoded body bytes, and the highest sequence.
    func summary() -> StoreRecovery {
        var queues: [StoreQueueKey: StoredQueueSummary] = [:]
        for (number, held) in references.enumerated() where !held.isEmpty {
            queues[keys.keys[number]] = StoredQueueSummary(count: held.count, bytes: held.bodyBytes)
        }
        return StoreRecovery(subscriptions: Array(subscriptions.values), queues: queues, highestSequence: highestSequence)
    }

    /// The live references of a key above `sequence`, ascending, at most `limit`, with their
    /// delivery counts and where their bodies are; empty for a key the index does not know.
    func page(of key: StoreQueueKey, after sequence: UInt64, limit: Int)
        -> [(sequence: UInt64, deliveryCount: UInt32, location: BodyLocation)]
    {
        guard limit > 0, let number = keys.existingNumber(for: key), Int(number) < references.count else { return [] }
        var result: [(sequence: UInt64, deliveryCount: UInt32, location: BodyLocation)] = []
        for (sequence, count) in references[Int(number)].page(after: sequence, limit: limit) {
            // Every live reference has its message (a reference goes before its message does).
            guard let entry = messages[sequence] else { continue }
            result.append((sequence, count, entry.location))
        }
        return result
    }
}
