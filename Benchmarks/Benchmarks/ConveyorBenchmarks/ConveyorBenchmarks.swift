import Benchmark
import Conveyor
import ConveyorWorkloads

/// The Conveyor benchmarks: the standard workloads on the memory store, one whole workload run per
/// iteration (the same code `conveyor bench` runs), and micro-benchmarks of hot paths.
///
/// Run from `Benchmarks/`: `swift package benchmark` for all, or
/// `swift package benchmark --filter 'W1.*'` for one (filters are regular expressions that must
/// match the whole benchmark name). Metrics: wall clock, throughput and malloc counts; ARC metrics
/// are deliberately absent, as they crash on Linux with Swift 6.3.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 5
    )

    for store in [WorkloadStore.memory] {
        workloadBenchmark(QueueTransientWorkload(), on: store)
        workloadBenchmark(TopicFanoutWorkload(), on: store)
        workloadBenchmark(RequestReplyWorkload(), on: store, latency: true)
    }

    selectorBenchmark()
}
