import Conveyor

/// One standard workload with its parameters: what `conveyor bench` and the benchmark package run.
///
/// An implementation opens its own ``Broker`` on the store it is given, sets up its connections,
/// sessions and consumers, starts the clock right before the first send, stops it when the last
/// message (or reply) has been received, and closes the broker before it returns. Producers and
/// consumers run as tasks; nothing blocks a thread of the cooperative pool.
public protocol Workload: Sendable {
    /// Which standard workload this is.
    var id: WorkloadID { get }

    /// How many messages the workload sends (the `messages` of its result). For a fan-out workload
    /// this counts published messages, not deliveries; for a latency workload, measured round trips.
    var messages: Int { get set }

    /// The unit of ``WorkloadMeasurement/rate``, for example `msg/s`.
    var unit: String { get }

    /// Runs the workload once.
    /// - Parameter location: Where this run's store lives (a fresh directory); the workload opens a
    ///   broker on `location.open()` and closes it before returning.
    /// - Returns: What was measured.
    /// - Throws: ``WorkloadError`` if the run did not complete (time limit, lost or unexpected
    ///   messages), or the ``ConveyorError`` of a failed broker call.
    func run(at location: StoreLocation) async throws -> WorkloadMeasurement
}
