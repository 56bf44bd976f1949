import Dispatch
import Foundation
import Synchronization

/// The thread a shared store runs after ``LMDBStore/startWatching(_:)``: waits on the process's
/// wake FIFO and runs the reaper, calling the broker's `onChange` when another process woke it or a
/// dead process's claims were released; at every round of the reaper it also publishes this
/// process's counters if they changed (``LMDBStore/publishStatisticsIfChanged()``).
///
/// A plain thread, not a task: it blocks in `poll` most of its life, which the cooperative pool
/// must never do. It holds the store weakly, so a store that goes away without ``LMDBStore/close()``
/// still goes (its `deinit` closes it and stops the thread).
final class SessionWatcher: @unchecked Sendable {
    /// How often the reaper looks for dead members (and the longest `poll` wait).
    static let reapInterval = Duration.milliseconds(250)

    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let channel: WakeChannel
    private weak var store: LMDBStore?
    private let onChange: @Sendable () -> Void
    private var thread: Thread?

    /// Starts the thread.
    init(channel: WakeChannel, store: LMDBStore, onChange: @escaping @Sendable () -> Void) {
        self.channel = channel
        self.store = store
        self.onChange = onChange
        let thread = Thread { [self] in run() }
        thread.name = "conveyor-lmdb-watcher"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread and, unless called on it (from `onChange`), waits until it has finished.
    func stop() {
        guard !stopped.exchange(true, ordering: .sequentiallyConsistent) else { return }
        channel.wakeSelf()
        if Thread.current !== thread { finished.wait() }
    }

    private func run() {
        defer { finished.signal() }
        let clock = ContinuousClock()
        var nextReap = clock.now
        while !stopped.load(ordering: .sequentiallyConsistent) {
            let wait = max(Duration.zero, nextReap - clock.now)
            let (seconds, attoseconds) = wait.components
            let woken = channel.wait(milliseconds: Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))
            if stopped.load(ordering: .sequentiallyConsistent) { return }
            var changed = false
            if woken {
                channel.drain()
                changed = true
            }
            if clock.now >= nextReap {
                nextReap = clock.now + Self.reapInterval
                guard let store else { return }
                if store.reapDeadMembers() > 0 { changed = true }
                store.publishStatisticsIfChanged()
            }
            if changed, !stopped.load(ordering: .sequentiallyConsistent) { onChange() }
        }
    }
}
