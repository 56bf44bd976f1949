import Conveyor
import Foundation

/// W5 durable-subscriptions: one persistent publisher in transactions of 100, two durable
/// subscribers each committing every 100 receives; the rate counts deliveries.
public struct DurableSubscriptionsWorkload: Workload {
    /// ``WorkloadID/w5``.
    public var id: WorkloadID { .w5 }
    /// Messages published (100,000 by default).
    public var messages: Int
    /// Durable subscribers (2).
    public var subscribers: Int
    /// Operations per transaction (100).
    public var batch: Int
    /// Body size in bytes (128 by default).
    public var bodySize: Int
    /// `deliveries/s`.
    public var unit: String { "deliveries/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to publish.
    ///   - subscribers: Durable subscriptions.
    ///   - batch: Operations per transaction.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 100_000, subscribers: Int = 2, batch: Int = 100, bodySize: Int = 128) {
        self.messages = messages
        self.subscribers = subscribers
        self.batch = batch
        self.bodySize = bodySize
    }

    /// Runs it: a publisher task and one task per durable subscriber.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let store = try location.open()
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection(clientID: "conveyor-bench-w5")
        let topic = Topic("conveyor.bench.w5")
        var readers: [(Session, MessageConsumer)] = []
        for index in 0..<subscribers {
            let session = try connection.createSession(.transacted)
            readers.append((session, try await session.createDurableConsumer(for: topic, name: "subscriber-\(index)")))
        }
        let publisherSession = try connection.createSession(.transacted)
        let publisher = try publisherSession.createProducer(for: .topic(topic))
        try connection.start()
        let message = Message.bytes(Data.random(count: bodySize))
        let (count, batch) = (messages, batch)
        let syncedWrites = SyncedWriteProbe(store)
        return try await withThrowingTaskGroup(of: Mark.self) { group in
            for (session, consumer) in readers {
                group.addTask {
                    try await receiveInTransactions(count: count, batch: batch, consumer: consumer, session: session, workload: .w5)
                    return .lastReceive(.now)
                }
            }
            group.addTask {
                let start = ContinuousClock.now
                try await sendInTransactions(message, count: count, batch: batch, producer: publisher, session: publisherSession)
                return .firstSend(start)
            }
            var measurement = try await Mark.measurement(of: &group, count: count * readers.count)
            measurement.syncedWritesPerThousand = syncedWrites.perThousand(of: count * readers.count)
            return measurement
        }
    }
}
