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
/// the next group. No thread of its own: a lone committer writes at once, with no hand-off.
package final class GroupCommit: Sendable {
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
            return outcome.withLock { state in
                defer { state = nil }
                return state ?? .done(.failure(ConveyorError(.storage, "a group commit lost its outcome")))
            }
        }
    }

    private struct Pending {
        let batch: StoreBatch
        let waiter: Waiter
    }

    private struct State {
        var pending: [Pending] = []
        var isLeading = false
        /// Whether other committers arrived while the last group was being written: a sign that
        /// commits are concurrent, so a short wait will let the next group gather them.
        var sawCompany = false
    }

    private let state = Mutex(State())
    /// How long a leader waits for more committers before writing (zero: write at once, grouping
    /// only the commits that arrived while the previous group was being written).
    private let linger: Duration
    private let adaptiveLinger: Duration

    /// - Parameters:
    ///   - linger: How long every leader waits for company before writing.
    ///   - adaptiveLinger: How long a leader waits when the previous group had company (commits
    ///     are arriving concurrently); zero when there was none, so a lone committer never waits.
    package init(linger: Duration = .zero, adaptiveLinger: Duration = .zero) {
        self.linger = linger
        self.adaptiveLinger = adaptiveLinger
    }

    /// Commits `batch` with whatever other batches are waiting.
    /// - Parameters:
    ///   - batch: This committer's changes.
    ///   - write: Writes a group of batches and returns one result per batch, in order.
    /// - Throws: This batch's error.
    package func commit(_ batch: StoreBatch, write: ([StoreBatch]) -> [Result<Void, ConveyorError>]) throws(ConveyorError) {
        let waiter = Waiter()
        let leads = state.withLock { state in
            state.pending.append(Pending(batch: batch, waiter: waiter))
            if state.isLeading { return false }
            state.isLeading = true
            return true
        }
        if !leads, case .done(let result) = waiter.wait() {
            return try result.get()
        }

        // Leading: write everything that is waiting, this batch included.
        let wait = max(linger, state.withLock { $0.sawCompany } ? adaptiveLinger : .zero)
        if wait > .zero {
            let (seconds, attoseconds) = wait.components
            usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        }
        let group = state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }
        let results = write(group.map(\.batch))
        var own: Result<Void, ConveyorError> = .failure(ConveyorError(.storage, "a group commit lost a batch"))
        for (pending, result) in zip(group, results) {
            if pending.waiter === waiter {
                own = result
            } else {
                pending.waiter.wake(.done(result))
            }
        }
        // Hand the lead to the first committer that arrived meanwhile, if any.
        let next = state.withLock { state -> Waiter? in
            state.sawCompany = group.count > 1 || !state.pending.isEmpty
            guard let first = state.pending.first else {
                state.isLeading = false
                return nil
            }
            return first.waiter
        }
        next?.wake(.lead)
        return try own.get()
    }
}
