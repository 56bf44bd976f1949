/// What one run of a ``Workload`` measured.
public struct WorkloadMeasurement: Sendable, Hashable {
    /// What the rate counts: messages received, deliveries to all subscribers, or round trips.
    public var count: Int
    /// The time from right before the first send to right after the last receive.
    public var elapsed: Duration
    /// Latency percentiles, for latency workloads.
    public var latency: LatencyPercentiles?
    /// Seconds from opening a broker on a backlog until it was ready, for recovery workloads.
    public var openSeconds: Double?
    /// Seconds from opening a broker on a backlog a killed process left until it was ready (W6 on
    /// disk stores).
    public var openAfterKillSeconds: Double?
    /// Anonymous resident memory of the process in MiB, for memory workloads.
    public var rssAnonMiB: Double?
    /// The disk's fsync floor in syncs per second, where measured (W2 on disk stores): 4 KiB
    /// writes appended to a growing file, each followed by `fdatasync`.
    public var fsyncFloorPerSecond: Double?
    /// The same loop rewriting 16 blocks already on disk, in syncs per second, where measured (W2 on
    /// disk stores): what a sync costs a store that rewrites pages or preallocates its files.
    public var fsyncOverwriteFloorPerSecond: Double?
    /// Bare LMDB durable commits per second (one put and one delete each), where measured (W2 on
    /// the LMDB store in sync mode).
    public var lmdbCommitFloorPerSecond: Double?
    /// The disk store's synced writes per 1,000 counted messages or deliveries (W2, W3, W5 and W6's
    /// drain on disk stores): how many syncs group commit left them to pay for.
    public var syncedWritesPerThousand: Double?

    /// Creates a measurement.
    /// - Parameters:
    ///   - count: What the rate counts.
    ///   - elapsed: The measured time.
    ///   - latency: Latency percentiles, if measured.
    ///   - openSeconds: Broker open time in seconds, if measured.
    ///   - rssAnonMiB: Anonymous resident memory in MiB, if measured.
    public init(
        count: Int, elapsed: Duration, latency: LatencyPercentiles? = nil, openSeconds: Double? = nil,
        rssAnonMiB: Double? = nil
    ) {
        self.count = count
        self.elapsed = elapsed
        self.latency = latency
        self.openSeconds = openSeconds
        self.rssAnonMiB = rssAnonMiB
    }

    /// ``elapsed`` in seconds.
    public var seconds: Double { elapsed.seconds }

    /// ``count`` per second of ``elapsed``; zero when nothing was timed.
    public var rate: Double {
        let seconds = self.seconds
        return seconds > 0 ? Double(count) / seconds : 0
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in microseconds, as a `Double`.
    var microseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
    }
}
