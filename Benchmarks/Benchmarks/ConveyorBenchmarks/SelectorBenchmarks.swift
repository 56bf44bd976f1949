import Benchmark
import Conveyor

/// Registers the selector micro-benchmark: evaluating a parsed selector against a message with
/// matching properties, 1,000 evaluations per scaled iteration. Evaluation should not allocate.
func selectorBenchmark() {
    Benchmark(
        "Selector matches: region = 'EU' AND total > 100",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 10_000
        )
    ) { (benchmark: Benchmark, setup: (selector: Selector, message: Message)) in
        let (selector, message) = setup
        for _ in benchmark.scaledIterations {
            blackHole(selector.matches(message))
        }
    } setup: {
        let selector = try Selector("region = 'EU' AND total > 100")
        let message = try Message.text("order").with("region", "EU").with("total", 150)
        precondition(selector.matches(message), "the benchmark message must match the selector")
        return (selector: selector, message: message)
    }
}
