// The memory window: on stores that page (LMDB, file), a durable queue keeps only a window of its
// backlog in memory and reads the rest back from the store, in order, as consumers drain it.
@testable import Conveyor
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite("Paging a backlog through the store")
struct PagingTests {
    static let pagingStores: [StoreKind] = [.lmdb, .lmdbCommitLog, .file]

    /// A window of 10 messages, read back 3 at a time: small enough that every test pages a lot.
    static var smallWindow: BrokerConfiguration {
        var configuration = BrokerConfiguration()
        configuration.memoryWindow = MemoryWindow(maximumMessages: 10, maximumBytes: 1 << 20, pageSize: 3)
        return configuration
    }

    static func messageQueue(_ broker: Broker, _ name: String) throws -> MessageQueue {
        guard case .queue(let queue) = try broker.target(for: .queue(Queue(name))) else { preconditionFailure() }
        return queue
    }

    @Test(arguments: pagingStores)
    func aBacklogBeyondTheWindowStaysInTheStoreAndIsDeliveredInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: Self.smallWindow)
        defer { fixture.close() }
        let queue = Queue("paged")
        _ = try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(100)
        #expect(fixture.broker.statistics(for: queue)?.depth == 100)
        #expect(try Self.messageQueue(fixture.broker, "paged").residentCount == 10, "only the window is in memory")
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        let received = try await consumer.receive(100)
        #expect(received.map(\.text) == (0..<100).map { "\($0)" })
        #expect(try await consumer.receiveNoWait() == nil)
        #expect(fixture.broker.statistics(for: queue)?.depth == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func aReopenedBrokerReadsTheBacklogLazilyAndInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: Self.smallWindow)
        let queue = Queue("paged-restart")
        _ = try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(50)
        let reopened = try fixture.reopen(configuration: Self.smallWindow)
        defer { reopened.close() }
        #expect(reopened.broker.statistics(for: queue)?.depth == 50)
        if kind != .memory {
            #expect(try Self.messageQueue(reopened.broker, "paged-restart").residentCount == 0, "nothing read at open")
        }
        let browsed = try reopened.connection.createSession().createBrowser(for: queue).messages()
        #expect(browsed.map(\.text) == (0..<50).map { "\($0)" }, "a browser sees the stored part too")
        let consumer = try reopened.connection.createSession().createConsumer(for: .queue(queue))
        let received = try await consumer.receive(50)
        #expect(received.map(\.text) == (0..<50).map { "\($0)" })
        #expect(received.allSatisfy { !$0.redelivered })
        #expect(try await consumer.receiveNoWait() == nil)
    }

    @Test(arguments: pagingStores)
    func concurrentProducersAndAConsumerLoseAndDuplicateNothing(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: Self.smallWindow)
        defer { fixture.close() }
        let queue = Queue("paged-concurrent")
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        let producers = 4
        let perProducer = 150
        let receiving = Task { try await consumer.receive(producers * perProducer, timeout: .seconds(5)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producerIndex in 0..<producers {
                group.addTask {
                    let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
                    for index in 0..<perProducer {
                        try await producer.send(.text("\(producerIndex)-\(index)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let received = try await receiving.value.map { $0.text ?? "" }
        #expect(received.count == producers * perProducer)
        #expect(Set(received).count == received.count, "no duplicates")
        for producerIndex in 0..<producers {
            let prefix = "\(producerIndex)-"
            let own: [String] = received.filter { $0.hasPrefix(prefix) }
            let expected: [String] = (0..<perProducer).map { prefix + String($0) }
            #expect(own == expected, "each producer's messages in order")
        }
        #expect(try await consumer.receiveNoWait() == nil)
    }

    @Test(arguments: pagingStores)
    func purgeRemovesTheStoredPartToo(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: Self.smallWindow)
        let queue = Queue("paged-purge")
        _ = try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(40)
        #expect(try await fixture.broker.purge(queue) == 40)
        #expect(fixture.broker.statistics(for: queue)?.depth == 0)
        let reopened = try fixture.reopen(configuration: Self.smallWindow)
        defer { reopened.close() }
        let consumer = try reopened.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .milliseconds(200)) == nil, "nothing comes back after a restart")
    }

    @Test(arguments: pagingStores)
    func aDurableSubscriptionPagesItsBacklog(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "pager", configuration: Self.smallWindow)
        let topic = Topic("paged-topic")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "audit").close()
        _ = try await session.createProducer(for: .topic(topic)).sendTexts(35)
        let reopened = try fixture.reopen(clientID: "pager", configuration: Self.smallWindow)
        defer { reopened.close() }
        let consumer = try await reopened.connection.createSession().createDurableConsumer(for: topic, name: "audit")
        #expect(try await consumer.receive(35).map(\.text) == (0..<35).map { "\($0)" })
        #expect(try await consumer.receiveNoWait() == nil)
    }

    @Test(arguments: pagingStores)
    func rolledBackMessagesComeBackBeforeTheStoredOnes(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: Self.smallWindow)
        defer { fixture.close() }
        let queue = Queue("paged-rollback")
        _ = try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(30)
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(5).map(\.text) == ["0", "1", "2", "3", "4"])
        try await session.rollback()
        let again = try await consumer.receive(30)
        #expect(again.map(\.text) == (0..<30).map { "\($0)" })
        let redelivered = again.map(\.redelivered)
        #expect(redelivered == Array(repeating: true, count: 5) + Array(repeating: false, count: 25))
        try await session.commit()
        #expect(fixture.broker.statistics(for: queue)?.depth == 0)
    }
}

extension PagingTests {
    /// A store whose page reads the test controls: they can be made to fail, as a damaged or
    /// vanished disk would, or to wait at a gate until the test opens it (or five seconds pass).
    final class ControlledReadStore: MessageStore {
        let base: any MessageStore
        let failsReads = Atomic<Bool>(false)
        let isGated = Atomic<Bool>(false)
        let readsWaiting = Atomic<Int>(0)
        let gateTimedOut = Atomic<Bool>(false)
        let isClosed = Atomic<Bool>(false)
        let readsAfterClose = Atomic<Int>(0)
        private let gate = DispatchSemaphore(value: 0)

        init(_ base: any MessageStore) { self.base = base }

        func openGate() {
            isGated.store(false, ordering: .releasing)
            gate.signal()
        }

        var name: String { base.name }
        var commitMayBlock: Bool { base.commitMayBlock }
        var pagesMessages: Bool { base.pagesMessages }
        func open() throws(ConveyorError) -> StoreRecovery { try base.open() }
        func commit(_ batch: StoreBatch) throws(ConveyorError) { try base.commit(batch) }
        func close() {
            isClosed.store(true, ordering: .releasing)
            base.close()
        }
        func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
            if failsReads.load(ordering: .acquiring) { throw ConveyorError(.storage, "simulated read failure") }
            if isGated.load(ordering: .acquiring) {
                readsWaiting.add(1, ordering: .acquiringAndReleasing)
                if gate.wait(timeout: .now() + 5) == .timedOut { gateTimedOut.store(true, ordering: .releasing) }
                readsWaiting.subtract(1, ordering: .acquiringAndReleasing)
            }
            if isClosed.load(ordering: .acquiring) { readsAfterClose.add(1, ordering: .acquiringAndReleasing) }
            return try base.messages(in: queue, after: sequence, limit: limit)
        }
    }

    /// A broker with the small window on a ``ControlledReadStore`` at `location`, with 30 messages
    /// ("0" to "29") sent to `queueName`: 10 in the window, 20 only in the store.
    static func backlogOf30(
        on location: StoreKind.Location, in queueName: String
    ) async throws -> (ControlledReadStore, Broker, Connection) {
        let store = ControlledReadStore(try location.makeStore())
        let broker = try Broker(store: store, configuration: smallWindow)
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        _ = try await connection.createSession().createProducer(for: .queue(Queue(queueName))).sendTexts(30)
        return (store, broker, connection)
    }

    @Test(arguments: pagingStores)
    func aFailingPageReadLeavesConsumersWaitingAndTheyResumeWhenTheStoreRecovers(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let (store, broker, connection) = try await Self.backlogOf30(on: location, in: "paged-failing")
        defer { broker.close() }
        let queue = Queue("paged-failing")
        store.failsReads.store(true, ordering: .releasing)
        let consumer = try connection.createSession().createConsumer(for: .queue(queue))
        // The window's 10 come; then the store cannot be read, and receive waits rather than spins.
        #expect(try await consumer.receive(10).map(\.text) == (0..<10).map { "\($0)" })
        let waiting = Task { try await consumer.receive(timeout: .seconds(10)) }
        #expect(await waitUntil { broker.statistics(for: queue)?.depth == 20 })
        store.failsReads.store(false, ordering: .releasing)
        #expect(try await waiting.value?.text == "10", "the waiting consumer is woken to try again")
        #expect(try await consumer.receive(19).map(\.text) == (11..<30).map { "\($0)" })
    }

    /// A consumer that takes messages from a half-drained window does not wait for the read of the
    /// next page: it runs in the background, overlapping the consumer's work and commits.
    @Test(arguments: pagingStores)
    func aConsumerWithMessagesDoesNotWaitForTheNextPageToBeRead(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let (store, broker, connection) = try await Self.backlogOf30(on: location, in: "paged-in-background")
        defer { broker.close() }
        let queue = Queue("paged-in-background")
        store.isGated.store(true, ordering: .releasing)
        let consumer = try connection.createSession().createConsumer(for: .queue(queue))

        // Taking the window's messages starts the read of the next page, which waits at the gate.
        #expect(try await consumer.receive(timeout: .seconds(10))?.text == "0")
        let waitedForTheRead = store.gateTimedOut.load(ordering: .acquiring)
        #expect(!waitedForTheRead, "the first message waited for the page read")
        #expect(await waitUntil { store.readsWaiting.load(ordering: .acquiring) == 1 }, "a page read started")

        store.openGate()
        #expect(try await consumer.receive(29).map(\.text) == (1..<30).map { "\($0)" })
    }

    /// Closing the broker waits for a page read running in the background, so the read never
    /// finds the store closed under it.
    @Test(arguments: pagingStores)
    func closingTheBrokerWaitsForABackgroundPageRead(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let (store, broker, connection) = try await Self.backlogOf30(on: location, in: "paged-closing")
        store.isGated.store(true, ordering: .releasing)
        let consumer = try connection.createSession().createConsumer(for: .queue(Queue("paged-closing")))
        #expect(try await consumer.receive(timeout: .seconds(10))?.text == "0")
        #expect(await waitUntil { store.readsWaiting.load(ordering: .acquiring) == 1 }, "a page read started")

        let closed = Atomic<Bool>(false)
        Thread {
            broker.close()
            closed.store(true, ordering: .releasing)
        }.start()
        // Had close not waited, the store would be closed while the read waits at the gate.
        _ = await waitUntil(timeout: .seconds(1)) { store.isClosed.load(ordering: .acquiring) }
        store.openGate()
        #expect(await waitUntil(timeout: .seconds(10)) { closed.load(ordering: .acquiring) })
        #expect(store.readsAfterClose.load(ordering: .acquiring) == 0)
    }
}
