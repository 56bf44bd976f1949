/// The references one queue or subscription holds in the file store's index: sequence → delivery
/// count, kept in ascending sequence order so that reading a page costs O(log n + page), not a sort.
///
/// Entries live in two sorted runs of parallel columns (12 bytes an entry, plus the arrays' spare
/// capacity): `main`, which takes appends — sequences mostly arrive ascending — and `late`, which
/// takes sequences that arrive below the end of `main` (commits of concurrent producers finishing
/// out of order, or compaction's copies of old messages when the journal is replayed). `late` is
/// merged into `main` once it holds more than an eighth as many entries, so an out-of-order insert
/// costs O(log n) plus a short move on average. A removed entry is only marked dead; a run is
/// rewritten without its dead entries once they outnumber half its live ones.
struct ReferenceList: Sendable {
    /// One sorted run: ascending, distinct sequences with their delivery counts.
    struct Run: Sendable {
        var sequences: [UInt64] = []
        /// The delivery count of each entry, or ``ReferenceList/dead`` for a removed one.
        var counts: [UInt32] = []
        /// How many entries are dead.
        var dead = 0

        var live: Int { sequences.count - dead }

        /// The position of the first entry with a sequence above `sequence` (dead or alive).
        func firstIndex(above sequence: UInt64) -> Int {
            sequences.firstIndex(above: sequence)
        }

        /// The position of `sequence` (dead or alive), if the run has it.
        func index(of sequence: UInt64) -> Int? {
            guard let last = sequences.last, sequence <= last else { return nil }
            let position = firstIndex(above: sequence) - 1
            return position >= 0 && sequences[position] == sequence ? position : nil
        }

        /// Marks the entry at `position` dead and returns its count, or `nil` if it already was.
        mutating func kill(at position: Int) -> UInt32? {
            let count = counts[position]
            guard count != ReferenceList.dead else { return nil }
            counts[position] = ReferenceList.dead
            dead += 1
            if dead > 32 && dead * 2 > live { dropDead() }
            return count
        }

        /// Rewrites the run without its dead entries, giving back memory it no longer needs.
        mutating func dropDead() {
            var kept = 0
            for position in sequences.indices where counts[position] != ReferenceList.dead {
                sequences[kept] = sequences[position]
                counts[kept] = counts[position]
                kept += 1
            }
            sequences.removeLast(sequences.count - kept)
            counts.removeLast(counts.count - kept)
            dead = 0
            if sequences.capacity > 2 * kept + 64 {
                sequences = sequences.withUnsafeBufferPointer { Array($0) }
                counts = counts.withUnsafeBufferPointer { Array($0) }
            }
        }
    }

    /// The count that marks a removed entry; real counts are clamped below it.
    static let dead = UInt32.max

    private(set) var main = Run()
    private(set) var late = Run()
    /// The encoded body bytes of the referenced messages; kept by ``JournalIndex``, which knows
    /// the bodies' lengths.
    var bodyBytes = 0

    /// The number of live references.
    var count: Int { main.live + late.live }

    var isEmpty: Bool { count == 0 }

    /// Makes room for `capacity` entries appended in ascending order.
    mutating func reserveCapacity(_ capacity: Int) {
        main.sequences.reserveCapacity(capacity)
        main.counts.reserveCapacity(capacity)
    }

    /// The delivery count of `sequence`, or `nil` if the list does not reference it.
    func deliveryCount(of sequence: UInt64) -> UInt32? {
        if let position = main.index(of: sequence) {
            let count = main.counts[position]
            return count == Self.dead ? nil : count
        }
        if let position = late.index(of: sequence) {
            let count = late.counts[position]
            return count == Self.dead ? nil : count
        }
        return nil
    }

    /// Adds a reference or, if there is one, sets its delivery count.
    /// - Returns: Whether the reference is new.
    @discardableResult
    mutating func insert(_ sequence: UInt64, deliveryCount: UInt32) -> Bool {
        let count = min(deliveryCount, Self.dead - 1)
        if let position = main.index(of: sequence) {
            let wasDead = main.counts[position] == Self.dead
            main.counts[position] = count
            if wasDead { main.dead -= 1 }
            return wasDead
        }
        if let position = late.index(of: sequence) {
            let wasDead = late.counts[position] == Self.dead
            late.counts[position] = count
            if wasDead { late.dead -= 1 }
            return wasDead
        }
        // An append, the common case, gets here in O(1): both lookups stop at the runs' last entries.
        if main.sequences.isEmpty || sequence > main.sequences[main.sequences.count - 1] {
            main.sequences.append(sequence)
            main.counts.append(count)
            return true
        }
        let position = late.firstIndex(above: sequence)
        late.sequences.insert(sequence, at: position)
        late.counts.insert(count, at: position)
        if late.sequences.count > max(64, main.sequences.count / 8) { mergeLate() }
        return true
    }

    /// Sets the delivery count of an existing reference; does nothing if there is none.
    mutating func setDeliveryCount(_ sequence: UInt64, to deliveryCount: UInt32) {
        let count = min(deliveryCount, Self.dead - 1)
        if let position = main.index(of: sequence) {
            if main.counts[position] != Self.dead { main.counts[position] = count }
        } else if let position = late.index(of: sequence) {
            if late.counts[position] != Self.dead { late.counts[position] = count }
        }
    }

    /// Removes a reference.
    /// - Returns: Its delivery count, or `nil` if there was none.
    @discardableResult
    mutating func remove(_ sequence: UInt64) -> UInt32? {
        if let position = main.index(of: sequence) { return main.kill(at: position) }
        if let position = late.index(of: sequence) { return late.kill(at: position) }
        return nil
    }

    /// The live references with sequences above `sequence`, ascending, at most `limit` of them.
    func page(after sequence: UInt64, limit: Int) -> [(sequence: UInt64, deliveryCount: UInt32)] {
        var result: [(sequence: UInt64, deliveryCount: UInt32)] = []
        guard limit > 0 else { return result }
        result.reserveCapacity(min(limit, count))
        forEachLive(after: sequence) { sequence, count in
            result.append((sequence, count))
            return result.count < limit
        }
        return result
    }

    /// Calls `body` with every live reference, ascending by sequence.
    func forEachLive(_ body: (UInt64, UInt32) -> Void) {
        forEachLive(after: nil) { sequence, count in
            body(sequence, count)
            return true
        }
    }

    /// Walks the live references above `sequence` (all of them for `nil`) in ascending order, both
    /// runs merged, until `body` returns `false`.
    private func forEachLive(after sequence: UInt64?, _ body: (UInt64, UInt32) -> Bool) {
        var first = sequence.map { main.firstIndex(above: $0) } ?? 0
        var second = sequence.map { late.firstIndex(above: $0) } ?? 0
        let firstEnd = main.sequences.count
        let secondEnd = late.sequences.count
        while first < firstEnd || second < secondEnd {
            let fromMain = second == secondEnd || (first < firstEnd && main.sequences[first] < late.sequences[second])
            let next: UInt64
            let count: UInt32
            if fromMain {
                next = main.sequences[first]
                count = main.counts[first]
                first += 1
            } else {
                next = late.sequences[second]
                count = late.counts[second]
                second += 1
            }
            if count != Self.dead, !body(next, count) { return }
        }
    }

    /// Merges `late` into `main`, dropping dead entries of both.
    private mutating func mergeLate() {
        var merged = Run()
        let total = count
        merged.sequences.reserveCapacity(total + total / 8)
        merged.counts.reserveCapacity(total + total / 8)
        forEachLive { sequence, count in
            merged.sequences.append(sequence)
            merged.counts.append(count)
        }
        main = merged
        late = Run()
    }
}
