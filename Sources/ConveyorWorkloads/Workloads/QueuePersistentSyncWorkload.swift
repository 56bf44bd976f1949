import Conveyor
import Foundation

/// W2 queue-persistent-sync: persistent messages, non-transacted, auto-acknowledge; each send
/// returns only once the message is durable in the store's default mode.
public struct QueuePersistentSyncWorkload: Workload {
    /// ``WorkloadID/w2``.
    public var id: WorkloadID { .w2 }
    /// Messages sent (20,000 by default).
    public var messages: Int
    /// Body size in bytes (128 by default).
    public var bodySize: Int
    /// `msg/s`.
    public var unit: String { "msg/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to send.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 20_000, bodySize: Int = 128) {
        self.messages = messages
        self.bodySize = bodySize
    }

    /// Runs it: one producer task and one consumer task.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let store = try location.open()
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("conveyor.bench.w2"))
        let producer = try connection.createSession().createProducer(for: queue)
        let consumer = try connection.createSession().createConsumer(for: queue)
        try connection.start()
        let message = Message.bytes(Data.random(count: bodySize))
        let count = messages
        let syncedWrites = SyncedWriteProbe(store)
        return try await withThrowingTaskGroup(of: Mark.self) { group in
            group.addTask {
                for received in 0..<count {
                    guard try await consumer.receive() != nil else {
                        throw WorkloadError(.incomplete, "W2: the consumer stopped after \(received) of \(count) messages")
                    }
                }
                return .lastReceive(.now)
            }
            group.addTask {
                let start = ContinuousClock.now
                for _ in 0..<count { try await producer.send(message) }
                return .firstSend(start)
            }
            var measurement = try await Mark.measurement(of: &group, count: count)
            measurement.syncedWritesPerThousand = syncedWrites.perThousand(of: count)
            if !location.keepsDataInInstance {
                measurement.fsyncFloorPerSecond = FsyncFloor.measure(in: location.directory, pattern: .append)
                measurement.fsyncOverwriteFloorPerSecond = FsyncFloor.measure(in: location.directory, pattern: .overwrite)
                if location.storeName == WorkloadStore.lmdb.name {
                    measurement.lmdbCommitFloorPerSecond = LMDBCommitFloor.measure(in: location.directory)
                }
            }
            return measurement
        }
    }
}
