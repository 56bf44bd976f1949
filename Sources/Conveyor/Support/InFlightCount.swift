import Dispatch
import Synchronization

/// Counts operations in progress (asynchronous sends whose completion handler has not returned) and
/// lets others wait until there are none, blocking a thread (`close()`) or suspending a task
/// (`commit()`).
final class InFlightCount: Sendable {
    private struct State {
        var count = 0
        var blockedThreads: [DispatchSemaphore] = []
        var suspendedTasks: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// One more operation in progress.
    func begin() {
        state.withLock { $0.count += 1 }
    }

    /// One operation finished; wakes the waiters when it was the last.
    func end() {
        let (threads, tasks) = state.withLock { state -> ([DispatchSemaphore], [CheckedContinuation<Void, Never>]) in
            state.count -= 1
            guard state.count == 0 else { return ([], []) }
            defer {
                state.blockedThreads = []
                state.suspendedTasks = []
            }
            return (state.blockedThreads, state.suspendedTasks)
        }
        for thread in threads { thread.signal() }
        for task in tasks { task.resume() }
    }

    /// Blocks the calling thread until no operation is in progress.
    func waitUntilNone() {
        let semaphore = state.withLock { state -> DispatchSemaphore? in
            guard state.count > 0 else { return nil }
            let semaphore = DispatchSemaphore(value: 0)
            state.blockedThreads.append(semaphore)
            return semaphore
        }
        semaphore?.wait()
    }

    /// Suspends the calling task until no operation is in progress.
    func none() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isNone = state.withLock { state in
                guard state.count > 0 else { return true }
                state.suspendedTasks.append(continuation)
                return false
            }
            if isNone { continuation.resume() }
        }
    }
}
