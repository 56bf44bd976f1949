import DequeModule

/// The messages waiting in a queue: one FIFO lane per priority (0–9), highest lane served first.
///
/// Appending and taking from the front are O(1). Messages handed back after a rollback or recover
/// are put back in sequence order, so a redelivered message comes before newer ones of its priority.
struct PendingMessages: Sendable {
    static let priorities = 10

    private var lanes: [Deque<QueueEntry>] = Array(repeating: [], count: priorities)
    /// Bit `p` is set when lane `p` is not empty.
    private var occupied: UInt16 = 0
    private(set) var count = 0
    private(set) var byteCount = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ entry: consuming QueueEntry) {
        let lane = Self.lane(for: entry.priority)
        count += 1
        byteCount += entry.message.body.byteCount
        occupied |= 1 << lane
        lanes[lane].append(entry)
    }

    /// Puts a message back where its sequence number belongs (usually the front of its lane).
    mutating func putBack(_ entry: QueueEntry) {
        let lane = Self.lane(for: entry.priority)
        let index = lanes[lane].firstIndex { $0.sequence > entry.sequence } ?? lanes[lane].endIndex
        lanes[lane].insert(entry, at: index)
        occupied |= 1 << lane
        count += 1
        byteCount += entry.message.body.byteCount
    }

    /// Moves up to `limit` messages into `buffer`, highest priority first. `decide` says for each
    /// waiting message whether to take it, leave it, or discard it (into `discarded`).
    /// - Returns: The body bytes of the messages taken.
    @discardableResult
    mutating func take(upTo limit: Int, into buffer: inout Deque<QueueEntry>, discarded: inout [DiscardedEntry],
                       deciding decide: (QueueEntry) -> TakeDecision) -> Int {
        var taken = 0
        var takenBytes = 0
        var lane = PendingMessages.priorities - 1
        while lane >= 0, taken < limit {
            defer { lane -= 1 }
            guard occupied & (1 << lane) != 0 else { continue }
            if buffer.isEmpty, lanes[lane].count <= limit - taken, let bytes = bytesIfTakingAll(lane: lane, deciding: decide) {
                // Everything in the lane goes: hand the whole lane over instead of moving entries
                // one by one (no copies, no reference counting per message).
                let moved = lanes[lane].count
                swap(&buffer, &lanes[lane])
                lanes[lane] = Deque()
                count -= moved
                byteCount -= bytes
                takenBytes += bytes
                occupied &= ~(1 << lane)
                taken += moved
                continue
            }
            var kept = Deque<QueueEntry>()
            var index = 0
            var removedAny = false
            while index < lanes[lane].count, taken < limit {
                // Decide on the entry in place (no copy); while nothing was skipped, take it off
                // the front by moving it.
                let decision = Self.inspect(&lanes[lane][index], with: decide)
                if case .take = decision, index == 0, kept.isEmpty {
                    let entry = lanes[lane].removeFirst()
                    count -= 1
                    byteCount -= entry.message.body.byteCount
                    takenBytes += entry.message.body.byteCount
                    buffer.append(entry)
                    taken += 1
                    continue
                }
                let entry = lanes[lane][index]
                switch decision {
                case .take:
                    buffer.append(entry)
                    taken += 1
                    removedAny = true
                    count -= 1
                    byteCount -= entry.message.body.byteCount
                    takenBytes += entry.message.body.byteCount
                case .discard(let reason):
                    discarded.append(DiscardedEntry(entry: entry, reason: reason))
                    removedAny = true
                    count -= 1
                    byteCount -= entry.message.body.byteCount
                case .skip:
                    kept.append(entry)
                }
                index += 1
            }
            if !removedAny, lanes[lane].isEmpty { occupied &= ~(1 << lane) }
            guard removedAny else { continue }
            if kept.isEmpty {
                lanes[lane].removeFirst(index)
            } else {
                kept.append(contentsOf: lanes[lane][index...])
                lanes[lane] = kept
            }
            if lanes[lane].isEmpty { occupied &= ~(1 << lane) }
        }
        return takenBytes
    }

    /// Removes and returns the oldest message of the lowest non-empty priority (overflow policy
    /// "drop oldest": the least important, longest-waiting message goes first).
    mutating func dropOldest() -> QueueEntry? {
        guard occupied != 0 else { return nil }
        let lane = occupied.trailingZeroBitCount
        let entry = lanes[lane].removeFirst()
        didRemove(entry, from: lane)
        return entry
    }

    /// Removes every message `remove` selects and returns them.
    mutating func removeAll(where remove: (QueueEntry) -> Bool) -> [QueueEntry] {
        var removed: [QueueEntry] = []
        for lane in 0..<Self.priorities where occupied & (1 << lane) != 0 {
            var kept = Deque<QueueEntry>()
            for entry in lanes[lane] {
                if remove(entry) {
                    removed.append(entry)
                    count -= 1
                    byteCount -= entry.message.body.byteCount
                } else {
                    kept.append(entry)
                }
            }
            lanes[lane] = kept
            if kept.isEmpty { occupied &= ~(1 << lane) }
        }
        return removed
    }

    /// Every waiting message in delivery order, highest priority first.
    func snapshot() -> [QueueEntry] {
        (0..<Self.priorities).reversed().flatMap { lanes[$0] }
    }

    private mutating func didRemove(_ entry: QueueEntry, from lane: Int) {
        count -= 1
        byteCount -= entry.message.body.byteCount
        if lanes[lane].isEmpty { occupied &= ~(1 << lane) }
    }

    private static func lane(for priority: Int) -> Int { min(max(priority, 0), priorities - 1) }

    /// The body bytes of a lane if `decide` takes every entry of it, else `nil`.
    private mutating func bytesIfTakingAll(lane: Int, deciding decide: (QueueEntry) -> TakeDecision) -> Int? {
        var bytes = 0
        for index in lanes[lane].indices {
            guard case .take = Self.inspect(&lanes[lane][index], with: { entry in
                bytes += entry.message.body.byteCount
                return decide(entry)
            }) else { return nil }
        }
        return bytes
    }

    /// Lends an entry to `body` through inout access, which reads it in place instead of copying it.
    @inline(__always)
    private static func inspect(_ entry: inout QueueEntry, with body: (QueueEntry) -> TakeDecision) -> TakeDecision {
        body(entry)
    }
}
