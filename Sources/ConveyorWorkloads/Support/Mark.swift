/// A point in time a producer or consumer task reports back to the workload that started it.
enum Mark: Sendable {
    /// Right before the first send.
    case firstSend(ContinuousClock.Instant)
    /// Right after the last receive of one consumer.
    case lastReceive(ContinuousClock.Instant)

    /// Waits for every task of the group and measures from the first send to the latest last receive.
    static func measurement(
        of group: inout ThrowingTaskGroup<Mark, any Error>, count: Int
    ) async throws -> WorkloadMeasurement {
        var start: ContinuousClock.Instant?
        var end: ContinuousClock.Instant?
        for try await mark in group {
            switch mark {
            case .firstSend(let instant):
                start = min(start ?? instant, instant)
            case .lastReceive(let instant):
                end = max(end ?? instant, instant)
            }
        }
        guard let start, let end else {
            preconditionFailure("a workload's group must report a first send and a last receive")
        }
        return WorkloadMeasurement(count: count, elapsed: end - start)
    }
}
