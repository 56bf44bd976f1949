import Conveyor
import Synchronization
import Testing

/// `Connection.setExceptionListener`: failures no call can report reach the listener.
@Suite("Exception listener")
struct ExceptionListenerTests {
    /// A memory store whose commits fail while `failsAcknowledgements` is set and the batch removes
    /// a message (an acknowledgement).
    final class AcknowledgementFailingStore: MessageStore {
        let base = MemoryStore()
        let failsAcknowledgements = Atomic(false)

        var name: String { "acknowledgement-failing" }
        var commitMayBlock: Bool { false }
        var pagesMessages: Bool { false }
        func open() throws(ConveyorError) -> StoreRecovery { try base.open() }
        func commit(_ batch: StoreBatch) throws(ConveyorError) {
            let acknowledges = batch.operations.contains { if case .remove = $0 { true } else { false } }
            if acknowledges, failsAcknowledgements.load(ordering: .acquiring) {
                throw ConveyorError(.storage, "the disk is full (test store)")
            }
            try base.commit(batch)
        }
        func recordDeliveries(_ batch: StoreBatch) throws(ConveyorError) { try base.commit(batch) }
        func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
            try base.messages(in: queue, after: sequence, limit: limit)
        }
        func close() { base.close() }
    }

    @Test
    func aStoreErrorWhileAcknowledgingForAListenerReachesTheExceptionListener() async throws {
        let store = AcknowledgementFailingStore()
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let reported = Recorder<ConveyorError>()
        try connection.setExceptionListener { reported.append($0) }
        let session = try connection.createSession(.autoAcknowledge)
        let orders = Destination.queue(Queue("orders"))
        let delivered = Recorder<String>()
        try session.createConsumer(for: orders).setMessageListener { delivered.append($0.text ?? "") }
        store.failsAcknowledgements.store(true, ordering: .releasing)
        try connection.start()
        try await session.createProducer(for: orders).send(.text("one"))

        #expect(await reported.waitForCount(1))
        #expect(delivered.all.first == "one")
        let error = try #require(reported.all.first)
        #expect(error.code == .storage)
        #expect(error.message.contains("disk is full"))
    }
}
