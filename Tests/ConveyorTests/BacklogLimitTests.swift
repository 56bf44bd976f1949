import Conveyor
import Foundation
import Synchronization
import Testing

/// A configuration with `limits` on the destination called `name`.
private func limited(_ name: String, _ limits: DestinationLimits) -> BrokerConfiguration {
    var configuration = BrokerConfiguration()
    var policy = DestinationPolicy()
    policy.limits = limits
    configuration.policies[name] = policy
    return configuration
}

@Suite("Backlog limits and overflow policies", .timeLimit(.minutes(1)))
struct BacklogLimitTests {
    // MARK: Reject

    @Test(arguments: StoreKind.allCases)
    func aFullQueueRejectsSendsNamingTheQueueAndLosesNothingItAccepted(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("bounded", DestinationLimits(maximumMessages: 3, overflow: .reject)))
        defer { fixture.close() }
        let queue = Queue("bounded")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.sendTexts(3)
        let error = await expectError(.resourceAllocation) { try await producer.send(.text("too many")) }
        #expect(error?.message.contains("bounded") == true, "\(error?.message ?? "")")
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.depth == 3 && stats.enqueued == 3 && stats.dropped == 0)

        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(4, timeout: .milliseconds(200)).map(\.text) == ["0", "1", "2"])
        try await producer.send(.text("room again"))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "room again")
    }

    @Test(arguments: StoreKind.allCases)
    func unacknowledgedMessagesCountAgainstTheLimit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("held", DestinationLimits(maximumMessages: 2, overflow: .reject)))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("held"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.sendTexts(2)
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let messages = try await session.createConsumer(for: queue).receive(2)
        #expect(messages.count == 2)
        await expectError(.resourceAllocation) { try await producer.send(.text("still full")) }
        try await messages[1].acknowledge()
        try await producer.send(.text("fits now"))
    }

    @Test(arguments: StoreKind.allCases)
    func prefetchedMessagesCountAgainstTheLimit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("prefetch-limit", DestinationLimits(maximumMessages: 2, overflow: .reject)))
        defer { fixture.close() }
        let queue = Queue("prefetch-limit")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.sendTexts(2)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "0")
        // "1" has not been delivered yet, wherever the broker keeps it: the queue holds one message.
        try await producer.send(.text("2"))
        await expectError(.resourceAllocation) { try await producer.send(.text("3")) }
        #expect(try await consumer.receive(3, timeout: .milliseconds(200)).map(\.text) == ["1", "2"])
    }

    @Test(arguments: StoreKind.allCases)
    func aByteLimitRejectsSendsThatDoNotFit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("bytes", DestinationLimits(maximumBytes: 10, overflow: .reject)))
        defer { fixture.close() }
        let queue = Queue("bytes")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("12345"))
        try await producer.send(.text("67890"))
        #expect(fixture.broker.statistics(for: queue)?.depthBytes == 10)
        let error = await expectError(.resourceAllocation) { try await producer.send(.text("x")) }
        #expect(error?.message.contains("bytes") == true)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "12345")
        try await producer.send(.text("abc"))
        #expect(try await consumer.receive(3, timeout: .milliseconds(200)).map(\.text) == ["67890", "abc"])
    }

    @Test(arguments: StoreKind.allCases)
    func eachSubscriptionOfALimitedTopicIsLimited(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "feed", configuration: limited("feed", DestinationLimits(maximumMessages: 2, overflow: .reject)))
        defer { fixture.close() }
        let topic = Topic("feed")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "slow").close()
        let producer = try session.createProducer(for: .topic(topic))
        try await producer.sendTexts(2)
        let error = await expectError(.resourceAllocation) { try await producer.send(.text("overflow")) }
        #expect(error?.message.contains("feed") == true)
        let back = try await session.createDurableConsumer(for: topic, name: "slow")
        #expect(try await back.receive(3, timeout: .milliseconds(200)).map(\.text) == ["0", "1"])
    }

    @Test(arguments: StoreKind.allCases)
    func aTransactionCannotOverfillAQueue(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("tx-bounded", DestinationLimits(maximumMessages: 2, overflow: .reject)))
        defer { fixture.close() }
        let queue = Queue("tx-bounded")
        let session = try fixture.connection.createSession(.transacted)
        try await session.createProducer(for: .queue(queue)).sendTexts(3)
        do {
            try await session.commit()
            Issue.record("a commit of three messages into a queue limited to two must fail")
        } catch {
            #expect([ConveyorError.Code.transactionRolledBack, .resourceAllocation].contains(error.code), "\(error)")
        }
        let stats = fixture.broker.statistics(for: queue)
        #expect((stats?.depth ?? 0) <= 2, "the queue holds at most its limit: \(String(describing: stats))")
        #expect((stats?.depth ?? 0) == 0, "a failed commit sends none of the transaction's messages")
    }

    @Test(arguments: StoreKind.allCases)
    func blockedSendersWokenTogetherTakeOnlyTheRoomThereIs(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("crowd", DestinationLimits(maximumMessages: 1, overflow: .block(timeout: .seconds(20)))))
        defer { fixture.close() }
        let queue = Queue("crowd")
        let session = try fixture.connection.createSession()
        try await session.createProducer(for: .queue(queue)).send(.text("first"))
        let finished = Recorder<Int>()
        var senders: [Task<Void, any Error>] = []
        for index in 0..<8 {
            let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
            senders.append(Task {
                try await producer.send(.text("blocked \(index)"))
                finished.append(index)
            })
        }
        #expect(await !waitUntil(timeout: .milliseconds(200)) { finished.count > 0 }, "all senders wait")
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "first")
        // One message left, so there is room for exactly one of the eight.
        #expect(await finished.waitForCount(1))
        #expect(await !waitUntil(timeout: .milliseconds(300)) { finished.count > 1 }, "only one sender got the free slot: \(finished.all)")
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.depth <= 1, "\(stats)")
        for sender in senders { sender.cancel() }
        for sender in senders { _ = try? await sender.value }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentSendsNeverOverfillAQueue(kind: StoreKind) async throws {
        // A store whose commits take a while (as a disk's do) leaves time between a send's check for
        // room and the moment its message is added: concurrent sends must not all see the same room.
        let location = StoreKind.Location(kind: kind)
        let store = SlowCommitStore(wrapping: try location.makeStore())
        let broker = try Broker(store: store, configuration: limited("race", DestinationLimits(maximumMessages: 2, overflow: .reject)))
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Queue("race")
        let accepted = Recorder<Int>()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    guard let producer = try? connection.createSession().createProducer(for: .queue(queue)) else { return }
                    if (try? await producer.send(.text("\(index)"))) != nil { accepted.append(index) }
                }
            }
        }
        let stats = try #require(broker.statistics(for: queue))
        #expect(stats.depth <= 2, "\(accepted.count) sends accepted: \(stats)")
        #expect(accepted.count == stats.depth)
    }

    @Test(arguments: StoreKind.allCases)
    func expiredMessagesDoNotKeepAQueueFull(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("stale", DestinationLimits(maximumMessages: 1, overflow: .reject)))
        defer { fixture.close() }
        let queue = Queue("stale")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        let stale = try await producer.send(.text("stale"), options: SendOptions(timeToLive: .milliseconds(20)))
        #expect(await waitUntil { Int64(Date().timeIntervalSince1970 * 1000) > stale.expiration })
        // Nobody consumes; the expired message must not hold the queue's only slot for ever.
        try await producer.send(.text("fresh"))
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(2, timeout: .milliseconds(200)).map(\.text) == ["fresh"])
    }

    // MARK: Block

    @Test(arguments: StoreKind.allCases)
    func aBlockedSendWaitsUntilAConsumerMakesRoom(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("flow", DestinationLimits(maximumMessages: 2, overflow: .block(timeout: .seconds(20)))))
        defer { fixture.close() }
        let queue = Queue("flow")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.sendTexts(2)
        let finished = Atomic<Bool>(false)
        let blocked = Task {
            try await producer.send(.text("2"))
            finished.store(true, ordering: .releasing)
        }
        let finishedEarly = await waitUntil(timeout: .milliseconds(300)) { finished.load(ordering: .acquiring) }
        #expect(!finishedEarly, "the send waits while the queue is full")
        #expect(fixture.broker.statistics(for: queue)?.depth == 2)

        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "0")
        #expect(await waitUntil { finished.load(ordering: .acquiring) }, "the consumer made room")
        try await blocked.value
        #expect(try await consumer.receive(3, timeout: .milliseconds(300)).map(\.text) == ["1", "2"])
        #expect(fixture.broker.statistics(for: queue)?.enqueued == 3)
    }

    @Test(arguments: StoreKind.allCases)
    func aBlockedSendTimesOutWithAResourceAllocationError(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("stuck", DestinationLimits(maximumMessages: 1, overflow: .block(timeout: .milliseconds(200)))))
        defer { fixture.close() }
        let queue = Queue("stuck")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("only"))
        let start = ContinuousClock.now
        let error = await expectError(.resourceAllocation) { try await producer.send(.text("waits in vain")) }
        #expect(ContinuousClock.now - start >= .milliseconds(190), "it waited for the timeout")
        #expect(error?.message.contains("stuck") == true)
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.depth == 1 && stats.enqueued == 1)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(2, timeout: .milliseconds(200)).map(\.text) == ["only"])
    }

    @Test(arguments: StoreKind.allCases)
    func aByteLimitBlocksToo(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("byte-flow", DestinationLimits(maximumBytes: 8, overflow: .block(timeout: .seconds(20)))))
        defer { fixture.close() }
        let queue = Queue("byte-flow")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("aaaa"))
        try await producer.send(.text("bbbb"))
        let finished = Atomic<Bool>(false)
        let blocked = Task {
            try await producer.send(.text("cccc"))
            finished.store(true, ordering: .releasing)
        }
        #expect(await !waitUntil(timeout: .milliseconds(300)) { finished.load(ordering: .acquiring) })
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "aaaa")
        #expect(await waitUntil { finished.load(ordering: .acquiring) })
        try await blocked.value
        #expect(try await consumer.receive(3, timeout: .milliseconds(300)).map(\.text) == ["bbbb", "cccc"])
    }

    // MARK: Drop oldest

    @Test(arguments: StoreKind.allCases)
    func dropOldestDropsTheOldestLowestPriorityMessageAndCountsIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("lossy", DestinationLimits(maximumMessages: 3, overflow: .dropOldest)))
        let queue = Queue("lossy")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("a"), options: SendOptions(priority: 4))
        try await producer.send(.text("b"), options: SendOptions(priority: 1))
        try await producer.send(.text("c"), options: SendOptions(priority: 4))
        try await producer.send(.text("d"), options: SendOptions(priority: 4))  // drops "b", the lowest priority
        var stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.dropped == 1 && stats.depth == 3 && stats.enqueued == 4)
        try await producer.send(.text("e"), options: SendOptions(priority: 4))  // drops "a", the oldest of priority 4
        stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.dropped == 2 && stats.depth == 3 && stats.enqueued == 5)
        #expect(try fixture.connection.createSession().createBrowser(for: queue).messages().map(\.text) == ["c", "d", "e"])

        // Dropped messages are gone from the store too.
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let consumer = try reopened.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(4, timeout: .milliseconds(200)).map(\.text) == ["c", "d", "e"])
    }

    @Test(arguments: StoreKind.allCases)
    func dropOldestHonoursAByteLimit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: limited("lossy-bytes", DestinationLimits(maximumBytes: 8, overflow: .dropOldest)))
        defer { fixture.close() }
        let queue = Queue("lossy-bytes")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        for text in ["aaaa", "bbbb", "cccc"] { try await producer.send(.text(text)) }
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.dropped == 1 && stats.depth == 2 && stats.depthBytes == 8)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(3, timeout: .milliseconds(200)).map(\.text) == ["bbbb", "cccc"])
    }
}

/// A store that takes a few milliseconds per commit, like a disk, and says so (`commitMayBlock`).
private final class SlowCommitStore: MessageStore {
    private let base: any MessageStore

    init(wrapping base: any MessageStore) { self.base = base }

    var name: String { "slow \(base.name)" }
    var commitMayBlock: Bool { true }
    var pagesMessages: Bool { base.pagesMessages }
    func open() throws(ConveyorError) -> StoreRecovery { try base.open() }
    func messages(in queue: StoreQueueKey, after sequence: UInt64, limit: Int) throws(ConveyorError) -> [RecoveredMessage] {
        try base.messages(in: queue, after: sequence, limit: limit)
    }
    func commit(_ batch: StoreBatch) throws(ConveyorError) {
        usleep(20_000)  // the simulated disk latency, on the broker's commit queue
        try base.commit(batch)
    }
    func close() { base.close() }
}
