import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization
import Testing

/// Where the broker records delivery counts (``MessageStore/recordDeliveries(_:)``): on the
/// consumer's own task when the store says that cannot block, off the cooperative pool otherwise.
@Suite("Recording deliveries")
struct DeliveryRecordingTests {
    /// A memory store whose commits "may block", noting whether each delivery record ran on a
    /// Swift task (the consumer's) or on a thread of the broker's blocking-commit queue.
    final class TaskNotingStore: MessageStore {
        let base = MemoryStore()
        let recordingDeliveriesMayBlock: Bool
        let recordedOnTask = Mutex<[Bool]>([])

        init(recordingDeliveriesMayBlock: Bool) { self.recordingDeliveriesMayBlock = recordingDeliveriesMayBlock }

        var name: String { "task-noting" }
        var commitMayBlock: Bool { true }
        var pagesMessages: Bool { false }
        func open() throws(ConveyorError) -> StoreRecovery { try base.open() }
        func commit(_ batch: StoreBatch) throws(ConveyorError) { try base.commit(batch) }
        func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError) {
            let onTask = withUnsafeCurrentTask { $0 != nil }
            recordedOnTask.withLock { $0.append(onTask) }
            try base.commit(batch)
        }
        func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
            try base.messages(in: queue, after: sequence, limit: limit)
        }
        func close() { base.close() }
    }

    @Test(arguments: [false, true])
    func deliveriesAreRecordedOffThePoolOnlyWhenThatMayBlock(mayBlock: Bool) async throws {
        let store = TaskNotingStore(recordingDeliveriesMayBlock: mayBlock)
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let session = try connection.createSession(.clientAcknowledge)
        let orders = Destination.queue(Queue("orders"))
        try await session.createProducer(for: orders).send(.text("one"))
        let consumer = try session.createConsumer(for: orders)
        try connection.start()

        let received = try await consumer.receive(timeout: .seconds(5))
        #expect(received?.text == "one")
        #expect(store.recordedOnTask.withLock { $0 } == [!mayBlock])
    }

    @Test
    func theDiskStoresRecordWithoutBlockingWhereTheyAppendWithoutASync() {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("unused-\(UUID().uuidString)")
        #expect(!FileStore(directory: directory).recordingDeliveriesMayBlock)
        #expect(!LMDBStore(directory: directory).recordingDeliveriesMayBlock, "single process, sync: the delivery log")
        #expect(LMDBStore(directory: directory, options: .init(sharing: .processes)).recordingDeliveriesMayBlock)
        #expect(LMDBStore(directory: directory, options: .init(durability: .osBuffered)).recordingDeliveriesMayBlock)
        #expect(!MemoryStore().recordingDeliveriesMayBlock)
    }
}
