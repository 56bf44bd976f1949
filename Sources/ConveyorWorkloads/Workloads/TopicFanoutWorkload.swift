import Conveyor
import Foundation

/// W4, topic-fanout: one publisher task and several non-durable subscribers, each on its own
/// session and task, non-persistent bytes messages.
///
/// Every subscriber receives every message, so the rate counts deliveries: messages × subscribers
/// (400,000 in the standard workload) over the time from the first send until the last subscriber
/// has its last message.
public struct TopicFanoutWorkload: Workload {
    /// ``WorkloadID/w4``.
    public var id: WorkloadID { .w4 }
    /// How many messages are published; 100,000 in the standard workload.
    public var messages: Int
    /// How many non-durable subscribers receive each message; 4 in the standard workload.
    public var subscribers: Int
    /// The size of each bytes message's body; 128 in the standard workload.
    public var bodySize: Int
    /// How long a run may take before it fails with ``WorkloadError/Code/timedOut``.
    public var timeLimit: Duration

    /// `deliveries/s`.
    public var unit: String { "deliveries/s" }

    /// Creates the workload; the defaults are the standard W4.
    /// - Parameters:
    ///   - messages: How many messages to publish; at least 1.
    ///   - subscribers: How many subscribers; at least 1.
    ///   - bodySize: Bytes per message body.
    ///   - timeLimit: The longest a run may take.
    public init(messages: Int = 100_000, subscribers: Int = 4, bodySize: Int = 128, timeLimit: Duration = .seconds(300)) {
        self.messages = messages
        self.subscribers = subscribers
        self.bodySize = bodySize
        self.timeLimit = timeLimit
    }

    /// Runs W4 once on `store`.
    /// - Parameter store: A fresh store for this run.
    /// - Returns: The count of deliveries and the time from the first send to the last delivery.
    /// - Throws: ``WorkloadError`` if deliveries were lost or the time limit passed; ``ConveyorError``
    ///   from the broker.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        guard messages >= 1, subscribers >= 1 else {
            throw WorkloadError(.invalidParameter, "W4 needs at least 1 message and 1 subscriber")
        }
        let broker = try Broker(store: location.open())
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let topic = Destination.topic(Topic("conveyor.bench.w4"))
        let publisher = try connection.createSession(.autoAcknowledge).createProducer(for: topic)
        let consumers = try (0..<subscribers).map { _ in
            try connection.createSession(.autoAcknowledge).createConsumer(for: topic)
        }
        try connection.start()
        let message = Message.bytes(Data.random(count: bodySize))
        let count = messages

        return try await withTimeLimit(timeLimit, of: id, closing: connection) {
            try await withThrowingTaskGroup(of: Mark.self) { group in
                for (index, consumer) in consumers.enumerated() {
                    group.addTask {
                        for received in 0..<count {
                            guard try await consumer.receive() != nil else {
                                throw WorkloadError(
                                    .incomplete, "W4: subscriber \(index + 1) stopped after \(received) of \(count) messages")
                            }
                        }
                        return .lastReceive(.now)
                    }
                }
                group.addTask {
                    let start = ContinuousClock.now
                    for _ in 0..<count {
                        try await publisher.send(message, options: .nonPersistent)
                    }
                    return .firstSend(start)
                }
                return try await Mark.measurement(of: &group, count: count * consumers.count)
            }
        }
    }
}
