#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule
import Dispatch
import Synchronization

/// A task executor with a thread of its own: the thread that runs one session's message listeners.
///
/// A session's listener task prefers this executor (`Task(executorPreference:)`), so the listener
/// loop, the listeners and their continuations run here, never on Swift's cooperative pool. That is
/// what lets `Connection.stop()` and `close()` block a pool thread until a listener in progress has
/// returned: the listener does not need the pool to finish (the pool has one thread per core and
/// could be entirely taken by such waits). One thread per session matches JMS's model, where a
/// session delivers to its listeners serially.
///
/// The thread runs jobs in the order they arrive and sleeps when there are none. ``finish()`` ends
/// it once the queue is empty; a job arriving after that runs on the global concurrent executor.
final class SessionThread: TaskExecutor, Sendable {
    private struct State {
        var jobs = Deque<UnownedJob>()
        var isFinishing = false
        var hasExited = false
    }

    private let state = Mutex(State())
    /// The thread's ID once it runs.
    private let threadID = Mutex<pthread_t?>(nil)
    /// Signalled once per job and once by `finish()`, so the thread never misses a wake-up.
    private let work = DispatchSemaphore(value: 0)

    /// Starts the thread.
    init() {
        // The thread holds the executor until it exits.
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Darwin) || canImport(Musl)
        var handle: pthread_t?  // a pointer type on these
        let started = pthread_create(&handle, nil, sessionThreadMain, context) == 0
        if started, let handle { pthread_detach(handle) }
        #else
        var handle = pthread_t()
        let started = pthread_create(&handle, nil, sessionThreadMain, context) == 0
        if started { pthread_detach(handle) }
        #endif
        if !started {
            // No thread (resource limits): run the jobs on the global executor instead.
            Unmanaged<SessionThread>.fromOpaque(context).release()
            state.withLock { $0.hasExited = true }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = state.withLock { state in
            guard !state.hasExited else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted {
            work.signal()
        } else {
            globalConcurrentExecutor.enqueue(job)
        }
    }

    /// Lets the thread end once it has run every job enqueued so far. Call it when nothing will
    /// enqueue more (the listener task is returning).
    func finish() {
        state.withLock { $0.isFinishing = true }
        work.signal()
    }

    /// Whether the caller runs on this executor's thread (where blocking until one of its own jobs
    /// has run would never end).
    var isCurrent: Bool {
        guard let id = threadID.withLock({ $0 }) else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    /// The thread's loop: run jobs one by one, sleep while there are none.
    fileprivate func run() {
        threadID.withLock { $0 = pthread_self() }
        let executor = asUnownedTaskExecutor()
        while true {
            work.wait()
            let (job, exits) = state.withLock { state -> (UnownedJob?, Bool) in
                if let job = state.jobs.popFirst() { return (job, false) }
                // Nothing left: this was `finish()`'s signal (or one whose job an earlier wake took).
                if state.isFinishing { state.hasExited = true }
                return (nil, state.hasExited)
            }
            if let job { job.runSynchronously(on: executor) }
            if exits { return }
        }
    }
}

/// The entry point of a ``SessionThread``'s thread (a C function pointer, so no captures).
#if canImport(Darwin)
private func sessionThreadMain(_ context: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    Unmanaged<SessionThread>.fromOpaque(context).takeRetainedValue().run()
    return nil
}
#else
private func sessionThreadMain(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    Unmanaged<SessionThread>.fromOpaque(context).takeRetainedValue().run()
    return nil
}
#endif
