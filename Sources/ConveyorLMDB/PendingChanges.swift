import Conveyor

/// One change a ``CommitLog`` record holds: a store operation with its queue named by destination
/// ID, or a fold of the ``DeliveryLog``.
enum LoggedOperation {
    /// A message, its encoding (``MessageCodec``) and the destinations referencing it (distinct,
    /// at least one).
    case add(sequence: UInt64, message: Message, encoded: ArraySlice<UInt8>, destinations: [UInt64])
    /// Drops one reference (and the body with the last one).
    case remove(sequence: UInt64, destination: UInt64)
    /// Sets the delivery count of an existing reference.
    case setDeliveryCount(sequence: UInt64, destination: UInt64, count: UInt32)
    /// Raises the delivery count of an existing reference to a logged one (never lowers it).
    case raiseDeliveryCount(sequence: UInt64, destination: UInt64, count: UInt32)
    /// The delivery log's records of this generation and older are folded into the changes.
    case foldedDeliveries(generation: UInt64)
}

/// The net effect of the commits logged in the ``CommitLog`` and not yet written into LMDB: what a
/// read combines with the database, and what the next checkpoint writes.
///
/// Net, because a message sent and consumed between two checkpoints never reaches the database: its
/// removal cancels its addition here. Each reference has one state, and every operation maps a
/// state to a state, so applying the log's operations in order gives the same result as applying
/// them to the database one by one.
struct PendingChanges {
    /// What is pending for one reference (destination ID, sequence).
    enum Reference: Equatable {
        /// Added since the last checkpoint, with its delivery count: the database does not hold it.
        case added(count: UInt32)
        /// Held by the database and removed since.
        case removed
        /// Held by the database (or not: then nothing happens) with its count set to this.
        case set(count: UInt32)
        /// Held by the database (or not) with its count raised to at least this.
        case raised(count: UInt32)
    }

    /// A message added since the last checkpoint.
    struct Body {
        var message: Message
        /// Its encoding, which the checkpoint writes.
        var encoded: ArraySlice<UInt8>
        /// How many pending ``Reference/added(count:)`` references still use it.
        var references: Int
    }

    /// The pending references of one destination.
    struct Destination {
        /// By sequence.
        private(set) var states: [UInt64: Reference] = [:]
        /// The sequences added here, ascending (a page read walks those above its start); some
        /// may have been removed since (their state is gone), until the list is compacted.
        private var added: [UInt64] = []
        /// The sequences removed here, ascending.
        private var removed: [UInt64] = []

        var isEmpty: Bool { states.isEmpty }

        subscript(sequence: UInt64) -> Reference? { states[sequence] }

        /// Sets a state; returns whether the reference is new here.
        mutating func set(_ state: Reference, for sequence: UInt64) -> Bool {
            let previous = states.updateValue(state, forKey: sequence)
            if previous == nil, case .added = state { Self.insert(sequence, into: &added) }
            if state == .removed, previous != .removed { Self.insert(sequence, into: &removed) }
            return previous == nil
        }

        /// What ``remove(_:)`` did.
        enum Removal {
            /// The reference was added here: its removal cancels its addition, and it is gone
            /// (with it, if it was the last, every pending reference of the destination).
            case cancelledAddition(leftEmpty: Bool)
            /// The reference was not pending here, and now is, removed.
            case newlyRemoved
            /// The reference was pending with a count, or removed already; now it is removed.
            case changed
        }

        /// Removes a reference: one hash lookup when the removal cancels a pending addition (a
        /// consumer acknowledging a message sent since the last checkpoint), the common case.
        mutating func remove(_ sequence: UInt64) -> Removal {
            guard let index = states.index(forKey: sequence) else {
                states[sequence] = .removed
                Self.insert(sequence, into: &removed)
                return .newlyRemoved
            }
            switch states.values[index] {
            case .added:
                states.remove(at: index)
                if added.count > 64, added.count > 2 * states.count {
                    added.removeAll { if case .added = states[$0] { false } else { true } }
                }
                return .cancelledAddition(leftEmpty: states.isEmpty)
            case .removed:
                return .changed
            case .set, .raised:
                states.values[index] = .removed
                Self.insert(sequence, into: &removed)
                return .changed
            }
        }

        /// The references added here with a sequence above `sequence`, ascending.
        func additions(after sequence: UInt64) -> [(sequence: UInt64, count: UInt32)] {
            var result: [(sequence: UInt64, count: UInt32)] = []
            for index in added.firstIndex(above: sequence)..<added.count {
                if case .added(let count) = states[added[index]] { result.append((added[index], count)) }
            }
            return result
        }

        /// How many references removed here have a sequence above `sequence`.
        func removals(after sequence: UInt64) -> Int {
            removed.count - removed.firstIndex(above: sequence)
        }

        /// Every reference with its state, ascending.
        func sorted() -> [(sequence: UInt64, state: Reference)] {
            states.map { ($0.key, $0.value) }.sorted { $0.sequence < $1.sequence }
        }

        /// Sequences mostly arrive in ascending order: append, or insert where it belongs.
        private static func insert(_ sequence: UInt64, into list: inout [UInt64]) {
            if let last = list.last, last > sequence {
                list.insert(sequence, at: list.firstIndex(above: sequence))
            } else {
                list.append(sequence)
            }
        }
    }

    /// Pending references, by destination ID.
    private(set) var references: [UInt64: Destination] = [:]
    /// How many references are pending, over all destinations.
    private(set) var referenceCount = 0
    /// Bodies of the messages added since the last checkpoint and still referenced.
    private(set) var bodies: [UInt64: Body] = [:]
    /// About how many bytes the pending bodies hold.
    private(set) var bodyBytes = 0
    /// The highest sequence added since the last checkpoint (0 if none), consumed or not: it must
    /// reach the database so that sequence numbers are never reused.
    private(set) var highestSequence: UInt64 = 0
    /// The highest delivery-log generation folded into the changes (0 if none).
    private(set) var foldedDeliveries: UInt64 = 0

    /// Whether there is nothing to write.
    var isEmpty: Bool { references.isEmpty && highestSequence == 0 && foldedDeliveries == 0 }

    /// About how many bytes a pending message holds: its body and a little for the rest.
    static func footprint(of message: Message) -> Int { message.body.byteCount + 64 }

    /// Applies one logged operation.
    mutating func apply(_ operation: LoggedOperation) {
        switch operation {
        case .add(let sequence, let message, let encoded, let destinations):
            highestSequence = max(highestSequence, sequence)
            guard !destinations.isEmpty else { return }
            bodies[sequence] = Body(message: message, encoded: encoded, references: destinations.count)
            bodyBytes += Self.footprint(of: message)
            for destination in destinations { set(.added(count: 0), sequence, destination) }
        case .remove(let sequence, let destination):
            switch references[destination, default: Destination()].remove(sequence) {
            case .cancelledAddition(let leftEmpty):
                referenceCount -= 1
                if leftEmpty { references[destination] = nil }
                release(sequence)
            case .newlyRemoved:
                referenceCount += 1
            case .changed:
                break
            }
        case .setDeliveryCount(let sequence, let destination, let count):
            update(sequence, destination) { state in
                switch state {
                case .added: .added(count: count)
                case .removed: .removed
                case .set, .raised, nil: .set(count: count)
                }
            }
        case .raiseDeliveryCount(let sequence, let destination, let count):
            update(sequence, destination) { state in
                switch state {
                case .added(let current): .added(count: max(current, count))
                case .removed: .removed
                case .set(let current): .set(count: max(current, count))
                case .raised(let current): .raised(count: max(current, count))
                case nil: .raised(count: count)
                }
            }
        case .foldedDeliveries(let generation):
            foldedDeliveries = max(foldedDeliveries, generation)
        }
    }

    private mutating func update(_ sequence: UInt64, _ destination: UInt64, _ change: (Reference?) -> Reference) {
        set(change(references[destination]?[sequence]), sequence, destination)
    }

    private mutating func set(_ state: Reference, _ sequence: UInt64, _ destination: UInt64) {
        if references[destination, default: Destination()].set(state, for: sequence) { referenceCount += 1 }
    }

    private mutating func release(_ sequence: UInt64) {
        guard let index = bodies.index(forKey: sequence) else { return }
        if bodies.values[index].references > 1 {
            bodies.values[index].references -= 1
        } else {
            bodyBytes -= Self.footprint(of: bodies.values[index].message)
            bodies.remove(at: index)
        }
    }

    // MARK: Reading

    /// Combines a page of one destination's references read from the database with the pending
    /// changes: drops the removed ones, applies counts, adds the pending additions above `sequence`,
    /// and keeps the first `limit` in sequence order.
    ///
    /// The page must have been read with ``extraReads(for:after:)`` more references than `limit`,
    /// so that dropping removed ones cannot make it look like the end of the destination.
    func merge(
        _ page: [RecoveredMessage], destination: UInt64, after sequence: UInt64, limit: Int
    ) -> [RecoveredMessage] {
        guard let pending = references[destination] else { return Array(page.prefix(limit)) }
        var merged: [RecoveredMessage] = []
        merged.reserveCapacity(min(limit, page.count + pending.states.count))
        for var stored in page {
            switch pending[stored.sequence] {
            case .removed:
                continue
            case .set(let count):
                stored.deliveryCount = Int(count)
            case .raised(let count):
                stored.deliveryCount = max(stored.deliveryCount, Int(count))
            case .added, nil:
                break
            }
            merged.append(stored)
        }
        for (pendingSequence, count) in pending.additions(after: sequence) {
            guard let body = bodies[pendingSequence] else { continue }
            merged.append(RecoveredMessage(sequence: pendingSequence, message: body.message, deliveryCount: Int(count)))
        }
        merged.sort { $0.sequence < $1.sequence }
        if merged.count > limit { merged.removeLast(merged.count - limit) }
        return merged
    }

    /// How many more references to read from the database for a page of one destination above
    /// `sequence`: as many as may be dropped as removed.
    func extraReads(for destination: UInt64, after sequence: UInt64) -> Int {
        references[destination]?.removals(after: sequence) ?? 0
    }
}
