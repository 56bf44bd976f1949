/// The latency percentiles a latency workload reports, in microseconds.
public struct LatencyPercentiles: Sendable, Hashable, Codable {
    /// The median.
    public var p50: Double
    /// The 99th percentile.
    public var p99: Double
    /// The 99.9th percentile.
    public var p999: Double

    /// Creates percentiles from values already computed.
    /// - Parameters:
    ///   - p50: The median, in microseconds.
    ///   - p99: The 99th percentile, in microseconds.
    ///   - p999: The 99.9th percentile, in microseconds.
    public init(p50: Double, p99: Double, p999: Double) {
        self.p50 = p50
        self.p99 = p99
        self.p999 = p999
    }

    /// Computes the percentiles of samples by the nearest-rank method.
    /// - Parameter samples: Latencies; at least one.
    public init(samples: [Duration]) {
        precondition(!samples.isEmpty, "percentiles need at least one sample")
        let sorted = samples.map(\.microseconds).sorted()
        self.init(
            p50: Self.nearestRank(0.5, of: sorted),
            p99: Self.nearestRank(0.99, of: sorted),
            p999: Self.nearestRank(0.999, of: sorted))
    }

    /// The smallest sample that at least `fraction` of the samples are less than or equal to.
    private static func nearestRank(_ fraction: Double, of sorted: [Double]) -> Double {
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
