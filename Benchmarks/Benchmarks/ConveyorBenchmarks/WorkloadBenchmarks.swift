import Benchmark
import ConveyorWorkloads
import Foundation

/// How one standard workload is run by the suite: how many iterations it gets and whether it is
/// warmed up. A whole workload run is one iteration, so the limits are small; they keep a full
/// `swift package benchmark` run at about 3 minutes on a 2-core machine (W2 on LMDB alone, 20,000
/// synced sends, takes about 9 s per run).
struct WorkloadPlan: Sendable {
    /// The workload's identifier; its standard parameters come from ``WorkloadID/workload``.
    var id: WorkloadID
    /// Warm-up runs before measuring (not reported).
    var warmupIterations: Int
    /// Measured runs at most.
    var maxIterations: Int
    /// Measuring stops after this long, even if fewer than ``maxIterations`` runs were made (at least
    /// one run is always made).
    var maxDuration: Duration
}

/// The standard workloads of `WORKLOADS.md` the suite runs on every store in ``WorkloadStore/all``.
///
/// The short workloads (W1, W4, L1: well under a second) get a warm-up run and up to 5 measured
/// runs; the persistent ones (W2, W3, W5, W6: up to ~10 s a run on LMDB) no warm-up and 3 runs, as
/// the standard median of 3. M1 (1,000,000 persistent 1 KiB messages, about 1 GiB written and
/// ~1.3-1.6 GiB of RssAnon; 5 s on memory, 13 s on LMDB here) runs once without warm-up: a warm-up
/// would leave its heap behind and inflate the RssAnon it reports. See ``runsM1`` to leave it out.
let workloadPlans: [WorkloadPlan] = [
    WorkloadPlan(id: .w1, warmupIterations: 1, maxIterations: 5, maxDuration: .seconds(10)),
    WorkloadPlan(id: .w2, warmupIterations: 0, maxIterations: 3, maxDuration: .seconds(40)),
    WorkloadPlan(id: .w3, warmupIterations: 0, maxIterations: 3, maxDuration: .seconds(40)),
    WorkloadPlan(id: .w4, warmupIterations: 1, maxIterations: 5, maxDuration: .seconds(10)),
    WorkloadPlan(id: .w5, warmupIterations: 0, maxIterations: 3, maxDuration: .seconds(40)),
    WorkloadPlan(id: .w6, warmupIterations: 0, maxIterations: 3, maxDuration: .seconds(40)),
    WorkloadPlan(id: .l1, warmupIterations: 1, maxIterations: 5, maxDuration: .seconds(10)),
    WorkloadPlan(id: .m1, warmupIterations: 0, maxIterations: 1, maxDuration: .seconds(1)),
]

/// Whether the memory workload M1 runs. It does unless the environment variable
/// `CONVEYOR_BENCH_M1` is `0` (or `false`/`no`), e.g. `CONVEYOR_BENCH_M1=0 swift package benchmark`
/// for a shorter run on a small machine. It is then not silently dropped: a placeholder benchmark
/// named `M1 backlog memory (<store>) [not run: CONVEYOR_BENCH_M1=0]` says so in the output.
let runsM1: Bool = {
    guard let value = ProcessInfo.processInfo.environment["CONVEYOR_BENCH_M1"]?.lowercased() else { return true }
    return !["0", "false", "no"].contains(value)
}()

/// The benchmark name of a workload on a store, e.g. `W1 queue-transient (memory)`.
func workloadBenchmarkName(_ id: WorkloadID, on store: WorkloadStore) -> String {
    "\(id.rawValue) \(id.name) (\(store.name))"
}

/// Registers the benchmarks of every planned workload on every store.
func workloadBenchmarks() {
    for store in WorkloadStore.all {
        for plan in workloadPlans {
            guard let workload = plan.id.workload else {
                // Every planned workload is implemented; a missing one must fail loudly, not vanish.
                fatalError("workload \(plan.id) is planned in the benchmark suite but not implemented")
            }
            if plan.id == .m1, !runsM1 {
                notRunBenchmark(
                    "\(workloadBenchmarkName(plan.id, on: store)) [not run: CONVEYOR_BENCH_M1=0]")
                continue
            }
            workloadBenchmark(workload, on: store, plan: plan)
        }
    }
}

/// Registers one benchmark that runs `workload` once per iteration on a fresh store from `store`.
///
/// Besides wall clock and malloc counts (of the whole run, broker set-up included), it reports the
/// workload's own rate as a custom metric (`msg/s`, `deliveries/s`, …), measured from the first send
/// to the last receive as `conveyor bench` does; for latency workloads the p50 and p99 in µs, for
/// recovery workloads (W6) the broker open time in µs, and for memory workloads (M1) the process's
/// anonymous resident memory (RssAnon) in MiB.
func workloadBenchmark(_ workload: some Workload, on store: WorkloadStore, plan: WorkloadPlan) {
    let rate = BenchmarkMetric.custom(workload.unit, polarity: .prefersLarger, useScalingFactor: false)
    let p50 = BenchmarkMetric.custom("p50 (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    let p99 = BenchmarkMetric.custom("p99 (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    let open = BenchmarkMetric.custom("open (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    let rss = BenchmarkMetric.custom("RssAnon (MiB)", polarity: .prefersSmaller, useScalingFactor: false)
    // No `.throughput`: iterations per second of a multi-second run says nothing the rate does not.
    var metrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal, rate]
    switch workload.id {
    case .l1: metrics += [p50, p99]
    case .w6: metrics += [open]
    case .m1: metrics += [rss]
    default: break
    }
    let runner = WorkloadRunner(store: store, runs: 1)

    Benchmark(
        workloadBenchmarkName(workload.id, on: store),
        configuration: .init(
            metrics: metrics,
            warmupIterations: plan.warmupIterations,
            maxDuration: plan.maxDuration,
            maxIterations: plan.maxIterations)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let measurement = try await runner.runOnce(workload)
            benchmark.measurement(rate, Int(measurement.rate.rounded()))
            if let percentiles = measurement.latency {
                benchmark.measurement(p50, Int(percentiles.p50.rounded()))
                benchmark.measurement(p99, Int(percentiles.p99.rounded()))
            }
            if let seconds = measurement.openSeconds {
                benchmark.measurement(open, Int((seconds * 1_000_000).rounded()))
            }
            if let mebibytes = measurement.rssAnonMiB {
                benchmark.measurement(rss, Int(mebibytes.rounded()))
            }
        }
    }
}

/// Registers a benchmark that measures nothing, so that a workload the suite did not run shows up
/// in the output under a name that says why, instead of silently disappearing.
func notRunBenchmark(_ name: String) {
    Benchmark(
        name,
        configuration: .init(metrics: [.wallClock], warmupIterations: 0, maxDuration: .milliseconds(1), maxIterations: 1)
    ) { _ in }
}
