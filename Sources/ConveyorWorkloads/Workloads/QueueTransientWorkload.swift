import Conveyor
import Foundation

/// W1, queue-transient: one producer task and one consumer task on a queue, non-persistent bytes
/// messages, auto-acknowledge.
///
/// The body is created once and the same message value is sent every time, so the workload measures
/// the broker, not the building of messages. Rate = messages / time from the first send to the last
/// receive.
public struct QueueTransientWorkload: Workload {
    /// ``WorkloadID/w1``.
    public var id: WorkloadID { .w1 }
    /// How many messages are sent and received; 200,000 in the standard workload.
    public var messages: Int
    /// The size of each bytes message's body; 128 in the standard workload.
    public var bodySize: Int
    /// How long a run may take before it fails with ``WorkloadError/Code/timedOut``.
    public var timeLimit: Duration

    /// `msg/s`.
    public var unit: String { "msg/s" }

    /// Creates the workload; the defaults are the standard W1.
    /// - Parameters:
    ///   - messages: How many messages to send; at least 1.
    ///   - bodySize: Bytes per message body.
    ///   - timeLimit: The longest a run may take.
    public init(messages: Int = 200_000, bodySize: Int = 128, timeLimit: Duration = .seconds(300)) {
        self.messages = messages
        self.bodySize = bodySize
        self.timeLimit = timeLimit
    }

    /// Runs W1 once on `store`.
    /// - Parameter store: A fresh store for this run.
    /// - Returns: The count of messages received and the time from the first send to the last receive.
    /// - Throws: ``WorkloadError`` if messages were lost or the time limit passed; ``ConveyorError``
    ///   from the broker.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        guard messages >= 1 else { throw WorkloadError(.invalidParameter, "W1 needs at least 1 message") }
        let broker = try Broker(store: location.open())
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("conveyor.bench.w1"))
        let producer = try connection.createSession(.autoAcknowledge).createProducer(for: queue)
        let consumer = try connection.createSession(.autoAcknowledge).createConsumer(for: queue)
        try connection.start()
        let message = Message.bytes(Data.random(count: bodySize))
        let count = messages

        return try await withTimeLimit(timeLimit, of: id, closing: connection) {
            try await withThrowingTaskGroup(of: Mark.self) { group in
                group.addTask {
                    let start = ContinuousClock.now
                    for _ in 0..<count {
                        try await producer.send(message, options: .nonPersistent)
                    }
                    return .firstSend(start)
                }
                group.addTask {
                    for received in 0..<count {
                        guard try await consumer.receive() != nil else {
                            throw WorkloadError(.incomplete, "W1: the consumer stopped after \(received) of \(count) messages")
                        }
                    }
                    return .lastReceive(.now)
                }
                return try await Mark.measurement(of: &group, count: count)
            }
        }
    }
}
