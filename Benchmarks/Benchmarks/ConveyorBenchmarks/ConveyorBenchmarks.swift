import Benchmark
import Conveyor
import ConveyorWorkloads

/// The Conveyor benchmarks: the standard workloads on every store in `WorkloadStore.all`, one whole
/// workload run per iteration (the same code `conveyor bench` runs), and micro-benchmarks of hot
/// paths (selector evaluation, one store transaction per store, LMDB decoding on reopen, one
/// send+receive).
///
/// Run from `Benchmarks/`: `swift package benchmark` for all (about 3 minutes on 2 cores;
/// `CONVEYOR_BENCH_M1=0` leaves out the 1,000,000-message M1), or
/// `swift package benchmark --filter 'W1.*'` for one (filters are regular expressions that must
/// match the whole benchmark name). Save and compare baselines with
/// `swift package benchmark baseline update main` and `swift package benchmark baseline compare main`.
/// Metrics: wall clock, throughput and malloc counts; ARC metrics are deliberately absent, as they
/// crash on Linux with Swift 6.3. Micro-benchmarks run 1,000 operations per iteration where an
/// operation is sub-microsecond (`scalingFactor: .kilo`); their tables show figures per operation.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 5
    )

    workloadBenchmarks()
    selectorBenchmark()
    storeBenchmarks()
    roundTripBenchmark()
}
