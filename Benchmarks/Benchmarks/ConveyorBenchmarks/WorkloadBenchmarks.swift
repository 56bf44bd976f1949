import Benchmark
import ConveyorWorkloads

/// Registers one benchmark that runs `workload` once per iteration on a fresh store from `store`.
///
/// Besides wall clock, throughput (iterations per second) and malloc counts, it reports the
/// workload's own rate as a custom metric (`msg/s`, `deliveries/s`, …), measured from the first send
/// to the last receive as `conveyor bench` does, and for latency workloads the p50 and p99 in µs.
func workloadBenchmark(_ workload: some Workload, on store: WorkloadStore, latency: Bool = false) {
    let rate = BenchmarkMetric.custom(workload.unit, polarity: .prefersLarger, useScalingFactor: false)
    let p50 = BenchmarkMetric.custom("p50 (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    let p99 = BenchmarkMetric.custom("p99 (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    var metrics = Benchmark.defaultConfiguration.metrics + [rate]
    if latency { metrics += [p50, p99] }
    let runner = WorkloadRunner(store: store, runs: 1)

    Benchmark(
        "\(workload.id) \(workload.id.name) (\(store.name))",
        configuration: .init(metrics: metrics)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let measurement = try await runner.runOnce(workload)
            benchmark.measurement(rate, Int(measurement.rate.rounded()))
            if latency, let percentiles = measurement.latency {
                benchmark.measurement(p50, Int(percentiles.p50.rounded()))
                benchmark.measurement(p99, Int(percentiles.p99.rounded()))
            }
        }
    }
}
