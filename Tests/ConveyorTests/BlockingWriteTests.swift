import Conveyor
import Dispatch
import Foundation
import Synchronization
import Testing

/// Store writes that may block run off Swift's cooperative pool, and never wait for a thread: a
/// group-committing store keeps the threads of a group's committers waiting for the group, and a
/// committer that found no thread free would wait until the dispatch pool added one.
@Suite("Blocking store writes")
struct BlockingWriteTests {
    /// A memory store whose commits of sends each wait until `expected` of them are inside
    /// `commit` at once (or fail after `patience`), as the committers of one group wait for each
    /// other.
    final class MeetingStore: MessageStore {
        let base = MemoryStore()
        let expected: Int
        let patience: DispatchTimeInterval
        private let arrived = Mutex(0)
        private let everyoneIsHere = DispatchSemaphore(value: 0)

        init(expected: Int, patience: DispatchTimeInterval) {
            self.expected = expected
            self.patience = patience
        }

        var name: String { "meeting" }
        var commitMayBlock: Bool { true }
        var pagesMessages: Bool { false }
        func open() throws(ConveyorError) -> StoreRecovery { try base.open() }
        func commit(_ batch: StoreBatch) throws(ConveyorError) {
            guard batch.operations.contains(where: { if case .add = $0 { true } else { false } }) else {
                return try base.commit(batch)
            }
            let count = arrived.withLock { arrived in
                arrived += 1
                return arrived
            }
            if count == expected {
                for _ in 1..<expected { everyoneIsHere.signal() }
            } else if everyoneIsHere.wait(timeout: .now() + patience) == .timedOut {
                throw ConveyorError(.storage, "only \(arrived.withLock { $0 }) of \(expected) commits were in progress at once")
            }
            try base.commit(batch)
        }
        func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
            try base.messages(in: queue, after: sequence, limit: limit)
        }
        func close() { base.close() }
    }

    @Test
    func moreConcurrentCommitsThanCoresAllRunAtOnce() async throws {
        let sessions = ProcessInfo.processInfo.activeProcessorCount + 2
        // Writes sharing a pool of about one thread per core would meet only once the pool had added
        // threads for the others, about a second for each here.
        let store = MeetingStore(expected: sessions, patience: .seconds(1))
        let broker = try Broker(store: store)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let orders = Destination.queue(Queue("orders"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<sessions {
                let session = try connection.createSession(.transacted)
                let producer = try session.createProducer(for: orders)
                group.addTask {
                    try await producer.send(.text("order \(index)"))
                    try await session.commit()
                }
            }
            try await group.waitForAll()
        }
        let consumer = try connection.createSession().createConsumer(for: orders)
        try connection.start()
        #expect(try await consumer.receive(sessions, timeout: .seconds(5)).count == sessions)
    }
}
