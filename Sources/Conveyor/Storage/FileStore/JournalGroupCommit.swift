#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// Lets concurrent committers share one journal write and one sync.
///
/// The first committer to arrive while nobody is writing leads: it takes every batch waiting (its
/// own included), has them appended and synced as one group, and hands each waiting committer its
/// result. Committers that arrive meanwhile queue up; when the leader is done, the first of them
/// leads the next group. There is no thread of its own, so a lone committer writes at once.
final class JournalGroupCommit: Sendable {
    /// A committer waiting for its group, parked on a semaphore.
    private final class Ticket: Sendable {
        enum Outcome: Sendable {
            case finished(Result<Void, ConveyorError>)
            case lead
        }

        private let semaphore = DispatchSemaphore(value: 0)
        private let outcome = Mutex<Outcome?>(nil)

        func resume(_ value: Outcome) {
            outcome.withLock { $0 = value }
            semaphore.signal()
        }

        func park() -> Outcome {
            semaphore.wait()
            return outcome.withLock { value in
                defer { value = nil }
                return value ?? .finished(.failure(ConveyorError(.storage, "a journal group commit lost its result")))
            }
        }
    }

    private struct Queue {
        var waiting: [(batch: StoreBatch, ticket: Ticket)] = []
        var leaderActive = false
    }

    private let queue = Mutex(Queue())
    private let linger: Duration

    /// - Parameter linger: How long a leader waits for more committers before writing.
    init(linger: Duration) {
        self.linger = linger
    }

    /// Commits `batch` together with whatever else is waiting.
    /// - Parameters:
    ///   - batch: This committer's changes.
    ///   - write: Appends and syncs a group of batches; one result for all of them.
    /// - Throws: The group's error.
    func commit(_ batch: StoreBatch, write: ([StoreBatch]) -> Result<Void, ConveyorError>) throws(ConveyorError) {
        let ticket = Ticket()
        let leads = queue.withLock { queue in
            queue.waiting.append((batch, ticket))
            guard !queue.leaderActive else { return false }
            queue.leaderActive = true
            return true
        }
        if !leads, case .finished(let result) = ticket.park() {
            return try result.get()
        }
        if linger > .zero {
            let (seconds, attoseconds) = linger.components
            usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        }
        let group = queue.withLock { queue in
            defer { queue.waiting.removeAll(keepingCapacity: true) }
            return queue.waiting
        }
        let result = write(group.map(\.batch))
        for member in group where member.ticket !== ticket {
            member.ticket.resume(.finished(result))
        }
        let next = queue.withLock { queue -> Ticket? in
            guard let first = queue.waiting.first else {
                queue.leaderActive = false
                return nil
            }
            return first.ticket
        }
        next?.resume(.lead)
        try result.get()
    }
}
