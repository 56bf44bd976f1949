import DequeModule

/// Values keyed by message sequence number, kept in sequence order, for the way a queue's stored
/// messages are used: added with rising sequence numbers, removed mostly from the oldest end.
///
/// The sequences of one queue are mostly consecutive, so a lookup first tries the position the
/// distance from the oldest sequence predicts and only then searches; no hashing is involved.
/// A removed value leaves a gap that is dropped as soon as it reaches either end, and all gaps
/// are dropped when they outnumber the values.
struct SequenceMap<Value> {
    private struct Slot {
        let sequence: UInt64
        /// `nil` once removed (a gap).
        var value: Value?
    }

    /// In ascending sequence order, gaps included; never starts or ends with a gap.
    private var slots = Deque<Slot>()
    /// How many values it holds (gaps not counted).
    private(set) var count = 0

    /// Whether it holds no value.
    var isEmpty: Bool { count == 0 }

    /// Sets the value for `sequence`, replacing the one it had.
    mutating func insert(_ value: Value, for sequence: UInt64) {
        if slots.isEmpty || sequence > slots[slots.count - 1].sequence {
            slots.append(Slot(sequence: sequence, value: value))
            count += 1
            return
        }
        let (found, index) = position(of: sequence)
        if found {
            if slots[index].value == nil { count += 1 }
            slots[index].value = value
        } else {
            slots.insert(Slot(sequence: sequence, value: value), at: index)
            count += 1
        }
    }

    /// Removes the value for `sequence`.
    /// - Returns: Whether there was one.
    @discardableResult
    mutating func removeValue(for sequence: UInt64) -> Bool {
        let (found, index) = position(of: sequence)
        guard found, slots[index].value != nil else { return false }
        slots[index].value = nil
        count -= 1
        while !slots.isEmpty, slots[0].value == nil { slots.removeFirst() }
        while !slots.isEmpty, slots[slots.count - 1].value == nil { slots.removeLast() }
        if slots.count > 32, slots.count > 2 * count {
            slots = Deque(slots.filter { $0.value != nil })
        }
        return true
    }

    /// Changes the value for `sequence` in place, if there is one.
    /// - Returns: Whether there was one.
    @discardableResult
    mutating func update(_ sequence: UInt64, _ change: (inout Value) -> Void) -> Bool {
        let (found, index) = position(of: sequence)
        guard found, slots[index].value != nil else { return false }
        change(&slots[index].value!)
        return true
    }

    /// Up to `limit` values with a sequence above `sequence`, in ascending order.
    func elements(after sequence: UInt64, limit: Int) -> [(sequence: UInt64, value: Value)] {
        var elements: [(sequence: UInt64, value: Value)] = []
        guard sequence < .max else { return elements }
        var index = lowerBound(sequence + 1)
        while index < slots.count, elements.count < limit {
            if let value = slots[index].value { elements.append((slots[index].sequence, value)) }
            index += 1
        }
        return elements
    }

    /// Calls `body` with every value, in ascending sequence order.
    func forEach(_ body: (Value) -> Void) {
        for slot in slots { if let value = slot.value { body(value) } }
    }

    /// Where `sequence` is, or where it would go.
    private func position(of sequence: UInt64) -> (found: Bool, index: Int) {
        guard !slots.isEmpty else { return (false, 0) }
        let first = slots[0].sequence
        if sequence >= first {
            let distance = sequence - first
            if distance < UInt64(slots.count), slots[Int(distance)].sequence == sequence { return (true, Int(distance)) }
        }
        let index = lowerBound(sequence)
        return (index < slots.count && slots[index].sequence == sequence, index)
    }

    /// The index of the first slot whose sequence is `sequence` or above (binary search).
    private func lowerBound(_ sequence: UInt64) -> Int {
        var low = 0
        var high = slots.count
        while low < high {
            let middle = (low + high) / 2
            if slots[middle].sequence < sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
