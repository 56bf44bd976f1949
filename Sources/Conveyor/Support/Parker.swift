import Synchronization

/// A wake-up signal for tasks: ``park(until:)`` suspends (never blocking a thread) until
/// ``unpark()`` is called, a deadline passes or the task is cancelled.
///
/// An `unpark()` with nobody parked leaves a permit, so a wake-up that races ahead of the wait is not
/// lost. Wake-ups are hints: the parked side re-checks its condition after every return. Usually one
/// task parks at a time (a consumer's receive); when several do (two tasks receiving from one
/// consumer, which JMS leaves to the application), `unpark()` wakes them all and each re-checks, so
/// none is left waiting for good.
final class Parker: Sendable {
    private struct State {
        var permit = false
        /// The parked tasks, each with the ticket its deadline timer expires it by.
        var waiters: [(ticket: UInt64, continuation: UnsafeContinuation<Void, Never>)] = []
        var nextTicket: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Wakes every parked task, or leaves a permit for the next `park`.
    func unpark() {
        let waiters = state.withLock { state -> [UnsafeContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else {
                state.permit = true
                return []
            }
            defer { state.waiters.removeAll(keepingCapacity: true) }
            return state.waiters.map(\.continuation)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends until woken, until `deadline` (if any), or until the task is cancelled.
    func park(until deadline: ContinuousClock.Instant?) async {
        if state.withLock({ state in
            if state.permit {
                state.permit = false
                return true
            }
            return false
        }) { return }
        if let deadline, deadline <= .now { return }

        await withTaskCancellationHandler {
            var timer: Task<Void, Never>?
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let ticket = state.withLock { state -> UInt64? in
                    if state.permit {
                        state.permit = false
                        return nil
                    }
                    state.nextTicket &+= 1
                    state.waiters.append((state.nextTicket, continuation))
                    return state.nextTicket
                }
                guard let ticket else {
                    continuation.resume()
                    return
                }
                if let deadline {
                    timer = Task { [self] in
                        try? await Task.sleep(until: deadline, clock: .continuous)
                        expire(ticket)
                    }
                }
            }
            timer?.cancel()
        } onCancel: {
            unpark()
        }
    }

    /// How many tasks are parked now; for tests.
    var parkedCount: Int { state.withLock { $0.waiters.count } }

    /// Wakes the task parked with `ticket` when its deadline passes, if it is still parked.
    private func expire(_ ticket: UInt64) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.ticket == ticket }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume()
    }
}
