import Synchronization

/// A one-waiter wake-up signal for tasks: ``park(until:)`` suspends (never blocking a thread) until
/// ``unpark()`` is called, a deadline passes or the task is cancelled.
///
/// An `unpark()` with nobody parked leaves a permit, so a wake-up that races ahead of the wait is not
/// lost. Wake-ups are hints: the parked side re-checks its condition after every return.
final class Parker: Sendable {
    private struct State {
        var permit = false
        var waiter: UnsafeContinuation<Void, Never>?
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Wakes the parked task, or leaves a permit for the next `park`.
    func unpark() {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.permit = true
            return nil
        }
        waiter?.resume()
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
                let generation = state.withLock { state -> UInt64? in
                    if state.permit {
                        state.permit = false
                        return nil
                    }
                    state.generation &+= 1
                    state.waiter = continuation
                    return state.generation
                }
                guard let generation else {
                    continuation.resume()
                    return
                }
                if let deadline {
                    timer = Task { [self] in
                        try? await Task.sleep(until: deadline, clock: .continuous)
                        expire(generation)
                    }
                }
            }
            timer?.cancel()
        } onCancel: {
            unpark()
        }
    }

    private func expire(_ generation: UInt64) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            guard state.generation == generation, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
