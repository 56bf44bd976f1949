import Conveyor
import Foundation

/// Runs workloads several times on one kind of store and summarises the runs.
///
/// ```swift
/// let runner = WorkloadRunner(store: .memory, runs: 3)
/// let result = try await runner.run(.w1)
/// print(result.rateMedian, result.unit)
/// ```
/// Runs are sequential, each on a fresh store from the factory, so they do not compete for cores.
public struct WorkloadRunner: Sendable {
    /// What a runner reports while it works: a run that starts, then the same run finished.
    public struct Progress: Sendable {
        /// The workload being run.
        public var workload: WorkloadID
        /// The store's name.
        public var store: String
        /// The run, from 1.
        public var run: Int
        /// How many runs there are in all.
        public var runs: Int
        /// The run's measurement once it has finished; `nil` when it is starting.
        public var measurement: WorkloadMeasurement?
    }

    /// The store's name, as reported in results.
    public let storeName: String
    /// How many times each workload runs.
    public let runs: Int
    /// The store each run opens in a fresh ``StoreLocation``.
    public let store: WorkloadStore
    /// The parent of each run's temporary directory; `nil` for the system's temporary directory.
    public let directory: URL?

    /// Creates a runner.
    /// - Parameters:
    ///   - store: The store to run on; each run gets a fresh location.
    ///   - runs: Runs per workload (3 for the standard median).
    ///   - directory: Where each run's temporary store directory is created (and removed
    ///     afterwards); the system's temporary directory by default.
    public init(store: WorkloadStore, runs: Int = 3, directory: URL? = nil) {
        self.directory = directory
        self.store = store
        self.storeName = store.name
        self.runs = runs
    }

    /// Runs a standard workload with its standard parameters ``runs`` times.
    /// - Parameters:
    ///   - id: The workload.
    ///   - progress: Told when each run starts and finishes; for progress displays.
    /// - Returns: The median, lowest and highest rate over the runs, and the other figures.
    /// - Throws: ``WorkloadError/Code/notImplemented`` for a workload without an implementation, and
    ///   whatever running the workload throws.
    public func run(_ id: WorkloadID, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> WorkloadResult {
        try await run(id, scaledBy: 1, progress: progress)
    }

    /// Runs a standard workload with its message counts scaled (see ``WorkloadID/workload(scaledBy:)``)
    /// ``runs`` times.
    /// - Parameters:
    ///   - id: The workload.
    ///   - scale: The factor for its message counts; 1 for the standard workload.
    ///   - progress: Told when each run starts and finishes.
    /// - Returns: The median, lowest and highest rate over the runs, and the other figures.
    /// - Throws: As ``run(_:progress:)``; ``WorkloadError/Code/invalidParameter`` if `scale` is not
    ///   above zero.
    public func run(_ id: WorkloadID, scaledBy scale: Double, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> WorkloadResult {
        guard scale > 0, scale.isFinite else {
            throw WorkloadError(.invalidParameter, "the scale must be above zero, not \(scale)")
        }
        guard let workload = id.workload(scaledBy: scale) else {
            let available = WorkloadID.implemented.map(\.rawValue).joined(separator: ", ")
            throw WorkloadError(
                .notImplemented, "workload \(id) (\(id.name)) is not implemented yet; available: \(available)")
        }
        return try await run(workload, progress: progress)
    }

    /// Runs a workload ``runs`` times, each time on a fresh store.
    /// - Parameters:
    ///   - workload: The workload, with its parameters.
    ///   - progress: Told when each run starts and finishes.
    /// - Returns: The median, lowest and highest rate over the runs, and the other figures.
    /// - Throws: ``WorkloadError/Code/invalidParameter`` if ``runs`` is less than 1; the first error
    ///   of a run (the remaining runs are skipped).
    public func run(_ workload: some Workload, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> WorkloadResult {
        guard runs >= 1 else {
            throw WorkloadError(.invalidParameter, "the number of runs must be at least 1, not \(runs)")
        }
        var measurements: [WorkloadMeasurement] = []
        for run in 1...runs {
            var report = Progress(workload: workload.id, store: storeName, run: run, runs: runs)
            progress?(report)
            let measurement = try await runOnce(workload)
            report.measurement = measurement
            progress?(report)
            measurements.append(measurement)
        }
        return WorkloadResult(workload: workload, store: storeName, measurements: measurements)
    }

    /// Runs a workload once on a fresh store: one benchmark iteration.
    /// - Parameter workload: The workload, with its parameters.
    /// - Returns: The run's measurement.
    /// - Throws: The store factory's error, or the workload's.
    public func runOnce(_ workload: some Workload) async throws -> WorkloadMeasurement {
        try await workload.run(at: StoreLocation(store: store, parent: directory))
    }
}
