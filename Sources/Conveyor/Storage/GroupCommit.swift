#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// Lets concurrent committers of a disk store share one write, and so one sync (used by
/// ``FileStore`` and `LMDBStore`).
///
/// Leader/follower: a committer that finds nobody writing becomes the leader, takes every batch
/// waiting (its own included), writes them as one group and wakes their committers with their
/// results. Committers that arrive meanwhile wait; when the leader is done, the first of them leads
/// the next group. No thread of its own: a lone committer writes at once, with no hand-off. When
/// a leader waits for the committers it expects, the last of them writes the group itself rather
/// than wake the leader to write it, and the leader, still asleep, gets its result like the others:
/// the group is written one thread wake-up sooner.
///
/// A committer that must not block (a task on Swift's cooperative pool) can instead hand its batch
/// to a leader waiting for it (``handOff(_:needsSync:completion:)``): the leader writes the group
/// at once and calls the committer back, and the committer's thread never leaves its pool.
package final class GroupCommit<Batch: Sendable>: Sendable {
    /// One waiting committer.
    private final class Waiter: Sendable {
        enum Outcome: Sendable {
            case done(Result<Void, ConveyorError>)
            case lead
        }

        private let semaphore = DispatchSemaphore(value: 0)
        private let outcome = Mutex<Outcome?>(nil)

        func wake(_ value: Outcome) {
            outcome.withLock { $0 = value }
            semaphore.signal()
        }

        func wait() -> Outcome {
            semaphore.wait()
            return take()
        }

        /// Waits until `deadline` at most; `nil` if nobody woke it by then.
        func wait(until deadline: DispatchTime) -> Outcome? {
            semaphore.wait(timeout: deadline) == .success ? take() : nil
        }

        private func take() -> Outcome {
            outcome.withLock { state in
                defer { state = nil }
                return state ?? .done(.failure(ConveyorError(.storage, "a group commit lost its outcome")))
            }
        }
    }

    private struct Pending {
        let batch: Batch
        let needsSync: Bool
        let committer: Committer
    }

    /// Who waits for a batch's result.
    private enum Committer {
        /// A thread blocked in ``commit(_:needsSync:write:)``.
        case waiting(Waiter)
        /// A committer that handed its batch off and is called back.
        case handedOff(@Sendable (Result<Void, ConveyorError>) -> Void)

        var waiter: Waiter? {
            if case .waiting(let waiter) = self { waiter } else { nil }
        }
    }

    private struct State {
        var pending: [Pending] = []
        var isLeading = false
        /// How many committers the next group is likely to have: the size of the last group, or
        /// the committers that queued up behind it, whichever is larger. When it is above one,
        /// commits are arriving concurrently (a producer's send and a consumer's acknowledgement,
        /// say), and a leader that waits for them lets them share one write and one sync instead
        /// of taking turns.
        var expected = 1
        /// The leader waiting for the committers it expects, while it waits: the last of them
        /// takes its group over.
        var lingering: Waiter?
    }

    private let state = Mutex(State())
    private let syncedWriteCount = Atomic<UInt64>(0)
    /// How long a leader waits for more committers before writing (zero: write at once, grouping
    /// only the commits that arrived while the previous group was being written).
    private let linger: Duration
    private let adaptiveLinger: Duration

    /// - Parameters:
    ///   - linger: How long every leader waits for company before writing.
    ///   - adaptiveLinger: At most how long a leader waits for the committers it expects when
    ///     commits have been arriving concurrently; it writes as soon as they are all there. A lone
    ///     committer never waits.
    package init(linger: Duration = .zero, adaptiveLinger: Duration = .zero) {
        self.linger = linger
        self.adaptiveLinger = adaptiveLinger
    }

    private static func microseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        return UInt32(clamping: seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
    }

    /// The group commit a disk store uses in `durability`: `.groupCommit` always lingers 200 µs to
    /// gather committers; `.sync` waits (at most 250 µs) only for the committers it expects when
    /// commits arrive concurrently, so a lone committer never waits. (`.osBuffered` commits do not
    /// group.)
    package convenience init(for durability: StoreDurability) {
        if durability == .groupCommit {
            self.init(linger: .microseconds(200))
        } else {
            self.init(adaptiveLinger: .microseconds(250))
        }
    }

    /// How many committers wait for the next group to be written (for tests).
    package var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Whether a leader is waiting for the committers it expects (for tests).
    package var isLingering: Bool { state.withLock { $0.lingering != nil } }

    /// How many groups have been written with a sync so far.
    package var syncedWrites: UInt64 { syncedWriteCount.load(ordering: .relaxed) }

    /// Commits `batch` with whatever other batches are waiting.
    /// - Parameters:
    ///   - batch: This committer's changes.
    ///   - needsSync: Whether the batch must be on disk when this returns (`false` for delivery
    ///     counts, see ``MessageStore/recordDeliveries(_:)``).
    ///   - write: Writes a group of batches and returns one result per batch, in order; its second
    ///     argument says whether any batch of the group needs the sync.
    /// - Throws: This batch's error.
    package func commit(
        _ batch: Batch, needsSync: Bool = true, write: ([Batch], Bool) -> [Result<Void, ConveyorError>]
    ) throws(ConveyorError) {
        let waiter = Waiter()
        let leads = state.withLock { state in
            state.pending.append(Pending(batch: batch, needsSync: needsSync, committer: .waiting(waiter)))
            if state.isLeading {
                // The last committer a waiting leader expects takes the group over.
                guard state.lingering != nil, state.pending.count >= state.expected else { return false }
                state.lingering = nil
                return true
            }
            state.isLeading = true
            return true
        }
        if !leads, case .done(let result) = waiter.wait() {
            return try result.get()
        }

        // Leading: write everything that is waiting, this batch included.
        if linger > .zero {
            usleep(Self.microseconds(linger))
        } else if adaptiveLinger > .zero {
            let waits = state.withLock { state in
                guard state.pending.count < state.expected else { return false }
                state.lingering = waiter
                return true
            }
            if waits {
                // Woken with a result, it was taken over; woken to lead, a batch was handed to it;
                // still lingering when the wait ends, it writes what came; none of these, it was
                // taken over or handed a batch just then, and is about to be woken.
                let deadline = DispatchTime.now() + .microseconds(Int(Self.microseconds(adaptiveLinger)))
                var outcome = waiter.wait(until: deadline)
                if outcome == nil {
                    let isWoken = state.withLock { state in
                        guard state.lingering === waiter else { return true }
                        state.lingering = nil
                        return false
                    }
                    if isWoken { outcome = waiter.wait() }
                }
                if case .done(let result)? = outcome { return try result.get() }
            }
        }
        let group = state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }
        let syncs = group.contains(where: \.needsSync)
        let results = write(group.map(\.batch), syncs)
        if syncs { syncedWriteCount.add(1, ordering: .relaxed) }
        var own: Result<Void, ConveyorError> = .failure(ConveyorError(.storage, "a group commit lost a batch"))
        for (pending, result) in zip(group, results) {
            switch pending.committer {
            case .waiting(let other) where other === waiter: own = result
            case .waiting(let other): other.wake(.done(result))
            case .handedOff(let completion): completion(result)
            }
        }
        // Hand the lead to the first committer that arrived meanwhile, if any.
        let next = state.withLock { state -> Waiter? in
            // Two committers taking turns (a group of one, one waiting) expect each other; but two
            // that both queued behind a group are still two, not three.
            state.expected = min(64, max(group.count, state.pending.count, min(2, group.count + state.pending.count)))
            // Only a lingering leader takes a handed-off batch, so those waiting now are all blocked.
            guard let first = state.pending.first?.committer.waiter else {
                state.isLeading = false
                return nil
            }
            return first
        }
        next?.wake(.lead)
        return try own.get()
    }

    /// Whether a leader is waiting for just one more committer: the case in which
    /// ``handOff(_:needsSync:completion:)`` takes a batch (a hint, for a committer deciding whether
    /// to prepare one; the hand-off itself decides).
    package var awaitsOneMore: Bool {
        state.withLock { $0.lingering != nil && $0.pending.count + 1 >= $0.expected }
    }

    /// Hands `batch` to the leader waiting for the committers it expects, if this is the last of
    /// them, without blocking: the leader writes the group at once and calls `completion` with
    /// this batch's result, on its own thread, before it returns. Meant for a committer on Swift's
    /// cooperative pool, which must not block and would otherwise first move to another thread.
    /// - Parameters:
    ///   - batch: This committer's changes.
    ///   - needsSync: As for ``commit(_:needsSync:write:)``.
    ///   - completion: Called once with the outcome, if the batch was taken.
    /// - Returns: Whether the batch was taken; if not, nothing happened, and the caller commits it
    ///   with ``commit(_:needsSync:write:)`` on a thread that may block.
    package func handOff(
        _ batch: Batch, needsSync: Bool = true, completion: @escaping @Sendable (Result<Void, ConveyorError>) -> Void
    ) -> Bool {
        let leader = state.withLock { state -> Waiter? in
            guard let lingering = state.lingering, state.pending.count + 1 >= state.expected else { return nil }
            state.pending.append(Pending(batch: batch, needsSync: needsSync, committer: .handedOff(completion)))
            state.lingering = nil
            return lingering
        }
        leader?.wake(.lead)
        return leader != nil
    }
}
