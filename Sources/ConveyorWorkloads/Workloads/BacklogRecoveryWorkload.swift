import Conveyor
import Foundation

/// W6 backlog-recovery: queue persistent messages with no consumer, close the broker, then time
/// (a) opening a new broker on the same store and (b) draining everything in transactions of 100.
/// The rate is the drain rate; ``WorkloadMeasurement/openSeconds`` is (a).
public struct BacklogRecoveryWorkload: Workload {
    /// ``WorkloadID/w6``.
    public var id: WorkloadID { .w6 }
    /// Messages queued (200,000 by default).
    public var messages: Int
    /// Operations per transaction (100).
    public var batch: Int
    /// Body size in bytes (128 by default).
    public var bodySize: Int
    /// `msg/s` (drain).
    public var unit: String { "msg/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to queue.
    ///   - batch: Operations per transaction.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 200_000, batch: Int = 100, bodySize: Int = 128) {
        self.messages = messages
        self.batch = batch
        self.bodySize = bodySize
    }

    /// Runs it.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let queue = Destination.queue(Queue("conveyor.bench.w6"))
        do {
            let broker = try Broker(store: location.open())
            defer { broker.close() }
            let session = try ConnectionFactory(broker: broker).createConnection().createSession(.transacted)
            let producer = try session.createProducer(for: queue)
            try await sendInTransactions(
                .bytes(Data.random(count: bodySize)), count: messages, batch: batch, producer: producer, session: session)
        }
        let opening = ContinuousClock.now
        let broker = try Broker(store: location.open())
        let openTime = ContinuousClock.now - opening
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let session = try connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        try connection.start()
        let start = ContinuousClock.now
        try await receiveInTransactions(count: messages, batch: batch, consumer: consumer, session: session, workload: .w6)
        return WorkloadMeasurement(count: messages, elapsed: .now - start, openSeconds: openTime.seconds)
    }
}
