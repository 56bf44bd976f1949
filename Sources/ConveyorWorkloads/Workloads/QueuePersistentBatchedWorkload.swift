import Conveyor
import Foundation

/// W3 queue-persistent-batched: persistent messages; the producer commits every 100 sends and the
/// consumer every 100 receives.
public struct QueuePersistentBatchedWorkload: Workload {
    /// ``WorkloadID/w3``.
    public var id: WorkloadID { .w3 }
    /// Messages sent (200,000 by default).
    public var messages: Int
    /// Sends or receives per transaction (100).
    public var batch: Int
    /// Body size in bytes (128 by default).
    public var bodySize: Int
    /// `msg/s`.
    public var unit: String { "msg/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to send.
    ///   - batch: Operations per transaction.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 200_000, batch: Int = 100, bodySize: Int = 128) {
        self.messages = messages
        self.batch = batch
        self.bodySize = bodySize
    }

    /// Runs it: one transacted producer task and one transacted consumer task.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let store = try location.open()
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("conveyor.bench.w3"))
        let producerSession = try connection.createSession(.transacted)
        let producer = try producerSession.createProducer(for: queue)
        let consumerSession = try connection.createSession(.transacted)
        let consumer = try consumerSession.createConsumer(for: queue)
        try connection.start()
        let message = Message.bytes(Data.random(count: bodySize))
        let (count, batch) = (messages, batch)
        let syncedWrites = SyncedWriteProbe(store)
        return try await withThrowingTaskGroup(of: Mark.self) { group in
            group.addTask {
                try await receiveInTransactions(count: count, batch: batch, consumer: consumer, session: consumerSession, workload: .w3)
                return .lastReceive(.now)
            }
            group.addTask {
                let start = ContinuousClock.now
                try await sendInTransactions(message, count: count, batch: batch, producer: producer, session: producerSession)
                return .firstSend(start)
            }
            var measurement = try await Mark.measurement(of: &group, count: count)
            measurement.syncedWritesPerThousand = syncedWrites.perThousand(of: count)
            return measurement
        }
    }
}
