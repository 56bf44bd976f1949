import Logging
import Synchronization

/// Statistics with a store shared by several processes (see ``SharedMessageStore``): the counters
/// of every process that uses or used the store, not only this one's.
///
/// This process hands the store its own counters (``countersForSharing()``, through
/// ``SharedMessageStore/shareStatistics(_:)``); the store publishes them to the others and keeps
/// the cumulative ones when this process closes it. Reading adds up three parts, each counted
/// once: the totals the store keeps, what the other open processes published
/// (``SharedMessageStore/countersBeyondThisProcess()``), and this process's live counters (never
/// its own published copy, which lags behind them).
extension Broker {
    /// What this process counted for every queue and subscription the store keeps messages for
    /// (temporary queues, never stored, stay out), since the broker opened. Queues with nothing
    /// to count are left out.
    func countersForSharing() -> [StoreQueueKey: DestinationCounters] {
        let queues = registry.withLock { Self.listedQueues(in: $0) }
        var counters: [StoreQueueKey: DestinationCounters] = [:]
        for queue in queues {
            guard let key = queue.storeKey else { continue }
            let own = queue.countersForSharing()
            if !own.isZero { counters[key, default: .zero].add(own) }
        }
        return counters
    }

    /// What the store says about every queue and subscription, read once per statistics call.
    struct SharedCounts {
        /// The references each holds (waiting, claimed and in flight in every process).
        var stored: [StoreQueueKey: StoredQueueSummary] = [:]
        /// What every other process counted (see ``SharedMessageStore/countersBeyondThisProcess()``).
        var beyondThisProcess: [StoreQueueKey: DestinationCounters] = [:]
    }

    /// Reads the store's side of the statistics; a part that cannot be read is logged and counts
    /// as empty, so statistics still show what this process knows.
    func readSharedCounts(_ shared: any SharedMessageStore) -> SharedCounts {
        var counts = SharedCounts()
        do {
            counts.stored = try shared.storedQueues()
        } catch {
            logger.error("cannot count the messages of the shared store: \(error)")
        }
        do {
            counts.beyondThisProcess = try shared.countersBeyondThisProcess()
        } catch {
            logger.error("cannot read the other processes' statistics from the shared store: \(error)")
        }
        return counts
    }

    /// One queue's or subscription's statistics over every process: the counters of all of them;
    /// the depth is what the store holds minus what is in flight in any process (so that it counts
    /// waiting messages, as ``DestinationStatistics/depth`` says). Queues the store never holds
    /// (temporary ones) show this process's counters.
    func sharedStatistics(of queue: MessageQueue, in counts: SharedCounts) -> DestinationStatistics {
        guard let key = queue.storeKey else { return queue.statistics() }
        var total = queue.countersForSharing()
        if let others = counts.beyondThisProcess[key] { total.add(others) }
        let stored = counts.stored[key] ?? StoredQueueSummary(count: 0, bytes: 0)
        return DestinationStatistics(
            name: queue.displayName, depth: max(0, stored.count - total.inFlight),
            depthBytes: max(0, stored.bytes - total.inFlightBytes), inFlight: total.inFlight,
            enqueued: total.enqueued, dequeued: total.dequeued, expired: total.expired,
            deadLettered: total.deadLettered, dropped: total.dropped, consumers: total.consumers)
    }

    /// Statistics with a shared store: every queue that holds messages or has counters in any
    /// process, and every subscription this process knows of (durable ones, and the non-durable
    /// ones of every open process), with the counters of every process.
    func sharedStatistics() -> [DestinationStatistics] {
        guard let shared else { return [] }
        syncSharedSubscriptions()
        let counts = readSharedCounts(shared)
        let queues = registry.withLock { registry -> [MessageQueue] in
            for key in Set(counts.stored.keys).union(counts.beyondThisProcess.keys) {
                if case .queue(let name) = key { _ = queue(named: name, in: &registry) }
            }
            return Self.listedQueues(in: registry)
        }
        return queues.map { sharedStatistics(of: $0, in: counts) }.sorted { $0.name < $1.name }
    }
}
