import Benchmark
import Conveyor
import ConveyorWorkloads

/// The Conveyor benchmarks: the standard workloads on the memory store, one whole workload run per
/// iteration (the same code `conveyor bench` runs), and micro-benchmarks of hot paths.
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
