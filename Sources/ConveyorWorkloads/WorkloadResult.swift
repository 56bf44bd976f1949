/// The summary of several runs of one workload on one store: the record `conveyor bench` prints.
///
/// Its coding keys are those of the JSON lines in `WORKLOADS.md` (`rate_median`, `p50_us`, …);
/// optional fields are left out when not measured.
public struct WorkloadResult: Sendable, Hashable, Codable {
    /// The workload identifier.
    public var workload: WorkloadID
    /// The store's name, for example `memory`.
    public var store: String
    /// The number of messages the workload sends per run (see ``Workload/messages``).
    public var messages: Int
    /// How many runs were summarised.
    public var runs: Int
    /// The median rate over the runs.
    public var rateMedian: Double
    /// The lowest rate of the runs.
    public var rateMin: Double
    /// The highest rate of the runs.
    public var rateMax: Double
    /// The rate's unit, for example `msg/s`.
    public var unit: String
    /// The median over the runs of each run's median latency, in microseconds.
    public var p50Microseconds: Double?
    /// The median over the runs of each run's 99th-percentile latency, in microseconds.
    public var p99Microseconds: Double?
    /// The median over the runs of each run's 99.9th-percentile latency, in microseconds.
    public var p999Microseconds: Double?
    /// The median broker open time over the runs, in seconds.
    public var openSeconds: Double?
    /// The median time to open a broker on a backlog a killed process left, in seconds.
    public var openAfterKillSeconds: Double?
    /// The median anonymous resident memory over the runs, in MiB.
    public var rssAnonMiB: Double?
    /// The median of the disk's fsync floor measured in the same runs (a loop of 4 KiB writes
    /// appended to a growing file, each followed by `fdatasync`), in syncs per second: what W2's
    /// one-at-a-time durable sends are compared against.
    public var fsyncFloorPerSecond: Double?
    /// The median of the same loop rewriting 16 blocks already on disk, in syncs per second: the
    /// cheaper sync a store that rewrites pages or preallocates its files pays.
    public var fsyncOverwriteFloorPerSecond: Double?
    /// The median rate of bare durable LMDB commits (one put and one delete each) measured in the
    /// same run, where measured (W2 on LMDB in sync mode): the most a one-at-a-time W2 can reach
    /// on LMDB, broker aside.
    public var lmdbCommitFloorPerSecond: Double?
    /// The median over the runs of the disk store's synced writes per 1,000 counted messages or
    /// deliveries, where measured.
    public var syncedWritesPerThousand: Double?

    /// The JSON keys, as in `WORKLOADS.md`.
    enum CodingKeys: String, CodingKey {
        case workload, store, messages, runs
        case rateMedian = "rate_median"
        case rateMin = "rate_min"
        case rateMax = "rate_max"
        case unit
        case p50Microseconds = "p50_us"
        case p99Microseconds = "p99_us"
        case p999Microseconds = "p999_us"
        case openSeconds = "open_seconds"
        case openAfterKillSeconds = "open_after_kill_seconds"
        case rssAnonMiB = "rss_anon_mib"
        case fsyncFloorPerSecond = "fsync_floor_per_s"
        case fsyncOverwriteFloorPerSecond = "fsync_overwrite_floor_per_s"
        case lmdbCommitFloorPerSecond = "lmdb_commit_floor_per_s"
        case syncedWritesPerThousand = "synced_writes_per_1000"
    }

    /// Summarises runs: the median, lowest and highest rate, and the median of every other figure.
    /// - Parameters:
    ///   - workload: The workload that was run.
    ///   - store: The store's name.
    ///   - measurements: One measurement per run; at least one.
    public init(workload: some Workload, store: String, measurements: [WorkloadMeasurement]) {
        precondition(!measurements.isEmpty, "a result summarises at least one run")
        let rates = measurements.map(\.rate)
        self.workload = workload.id
        self.store = store
        self.messages = workload.messages
        self.runs = measurements.count
        self.rateMedian = Self.median(rates)
        self.rateMin = rates.min() ?? 0
        self.rateMax = rates.max() ?? 0
        self.unit = workload.unit
        let latencies = measurements.compactMap(\.latency)
        if !latencies.isEmpty {
            p50Microseconds = Self.median(latencies.map(\.p50))
            p99Microseconds = Self.median(latencies.map(\.p99))
            p999Microseconds = Self.median(latencies.map(\.p999))
        }
        openSeconds = Self.median(of: measurements, \.openSeconds)
        openAfterKillSeconds = Self.median(of: measurements, \.openAfterKillSeconds)
        rssAnonMiB = Self.median(of: measurements, \.rssAnonMiB)
        fsyncFloorPerSecond = Self.median(of: measurements, \.fsyncFloorPerSecond)
        fsyncOverwriteFloorPerSecond = Self.median(of: measurements, \.fsyncOverwriteFloorPerSecond)
        lmdbCommitFloorPerSecond = Self.median(of: measurements, \.lmdbCommitFloorPerSecond)
        syncedWritesPerThousand = Self.median(of: measurements, \.syncedWritesPerThousand)
    }

    /// The median of a figure over the runs that measured it; `nil` when none did.
    private static func median(of measurements: [WorkloadMeasurement], _ figure: KeyPath<WorkloadMeasurement, Double?>) -> Double? {
        let values = measurements.compactMap { $0[keyPath: figure] }
        return values.isEmpty ? nil : median(values)
    }

    /// The median of values; the mean of the middle two for an even count.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count.isMultiple(of: 2) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle]
    }
}
