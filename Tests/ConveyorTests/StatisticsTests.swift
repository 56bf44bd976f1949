import Conveyor
import Foundation
import Testing

/// The statistics of `queue`, or a test failure.
private func stats(_ fixture: Fixture, _ queue: Queue, sourceLocation: SourceLocation = #_sourceLocation) throws -> DestinationStatistics {
    try #require(fixture.broker.statistics(for: queue), sourceLocation: sourceLocation)
}

/// Every message ever enqueued is waiting, in flight, or gone for a counted reason.
private func isBalanced(_ s: DestinationStatistics) -> Bool {
    s.enqueued == s.depth + s.inFlight + s.dequeued + s.expired + s.deadLettered + s.dropped
}

@Suite("Destination statistics", .timeLimit(.minutes(1)))
struct StatisticsTests {
    @Test(arguments: StoreKind.allCases)
    func countersFollowAMessageThroughItsLife(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("lifecycle")
        #expect(fixture.broker.statistics(for: queue) == nil, "an unused queue has no statistics")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("abc"))
        try await producer.send(.text("defgh"))
        try await producer.send(.text("ij"))
        var s = try stats(fixture, queue)
        #expect(s.name == "queue://lifecycle")
        #expect(s.depth == 3 && s.depthBytes == 10 && s.enqueued == 3)
        #expect(s.inFlight == 0 && s.dequeued == 0 && s.expired == 0 && s.deadLettered == 0 && s.dropped == 0)
        #expect(s.consumers == 0)

        let session = try fixture.connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try stats(fixture, queue).consumers == 1)
        let messages = try await consumer.receive(3)
        s = try stats(fixture, queue)
        #expect(s.inFlight == 3 && s.depth == 0 && s.depthBytes == 0 && s.dequeued == 0)
        try await messages[2].acknowledge()
        s = try stats(fixture, queue)
        #expect(s.inFlight == 0 && s.dequeued == 3 && s.enqueued == 3)
        consumer.close()
        #expect(try stats(fixture, queue).consumers == 0)
        #expect(isBalanced(try stats(fixture, queue)))
    }

    @Test(arguments: StoreKind.allCases)
    func rollbackMovesMessagesFromInFlightBackToTheDepth(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("stats-rollback")
        try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(2)
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(queue))
        _ = try await consumer.receive(2)
        var s = try stats(fixture, queue)
        #expect(s.inFlight == 2 && s.depth == 0)
        try await session.rollback()
        s = try stats(fixture, queue)
        #expect(s.inFlight == 0 && s.depth == 2 && s.enqueued == 2 && s.dequeued == 0, "a redelivery is not a new enqueue")
        _ = try await consumer.receive(2)
        try await session.commit()
        s = try stats(fixture, queue)
        #expect(s.dequeued == 2 && s.inFlight == 0 && s.depth == 0 && s.enqueued == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func messagesTakenButNotYetDeliveredStillCount(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("stats-partial")
        try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(5)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(2).count == 2)
        // Three messages have not reached the application: the statistics must account for them.
        let s = try stats(fixture, queue)
        #expect(s.dequeued == 2 && s.enqueued == 5)
        #expect(s.depth + s.inFlight == 3, "\(s)")
        #expect(isBalanced(s), "\(s)")
    }

    @Test(arguments: StoreKind.allCases)
    func expiredDeadLetteredAndDroppedAreCountedOnTheirQueue(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        var policy = DestinationPolicy()
        policy.redelivery = RedeliveryPolicy(maximumRedeliveries: 0)
        policy.limits = DestinationLimits(maximumMessages: 3, overflow: .dropOldest)
        configuration.policies["counted"] = policy
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Queue("counted")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        // Long enough to still be queued when the queue fills up, even with a slow disk under load.
        let doomed = try await producer.send(.text("expires"), options: SendOptions(priority: 9, timeToLive: .seconds(5)))
        try await producer.send(.text("poison"), options: SendOptions(priority: 8))
        try await producer.send(.text("dropped"), options: SendOptions(priority: 0))
        try await producer.send(.text("fine"), options: SendOptions(priority: 5))  // full: "dropped" goes
        #expect(try stats(fixture, queue).dropped == 1)
        #expect(await waitUntil(timeout: .seconds(10)) { Int64(Date().timeIntervalSince1970 * 1000) > doomed.expiration })

        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "poison")
        try await session.rollback()
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "fine")
        try await session.commit()
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)

        let s = try stats(fixture, queue)
        #expect(s.enqueued == 4 && s.expired == 1 && s.deadLettered == 1 && s.dropped == 1 && s.dequeued == 1)
        #expect(s.depth == 0 && s.inFlight == 0)
        #expect(isBalanced(s))
        let dlq = try stats(fixture, Queue("DLQ.counted"))
        #expect(dlq.enqueued == 1 && dlq.depth == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func allQueuesAndSubscriptionsAreListedByName(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "lister")
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let topic = Topic("listed")
        let durable = try await session.createDurableConsumer(for: topic, name: "audit")
        let plain = try session.createConsumer(for: .topic(topic))
        try await session.createProducer(for: .queue(Queue("b-queue"))).send(.text("x"))
        try await session.createProducer(for: .queue(Queue("a-queue"))).send(.text("y"))
        try await session.createProducer(for: .topic(topic)).sendTexts(2)

        let all = fixture.broker.statistics()
        let names = all.map(\.name)
        #expect(names == names.sorted())
        #expect(names.contains("queue://a-queue") && names.contains("queue://b-queue"))
        #expect(names.contains("topic://listed#lister:audit"))
        let subscriptions = all.filter { $0.name.hasPrefix("topic://listed#") }
        #expect(subscriptions.count == 2)
        for subscription in subscriptions {
            #expect(subscription.enqueued == 2 && subscription.depth == 2 && subscription.consumers == 1, "\(subscription)")
        }
        plain.close()
        durable.close()
        let after = fixture.broker.statistics().filter { $0.name.hasPrefix("topic://listed#") }
        #expect(after.map(\.name) == ["topic://listed#lister:audit"], "the non-durable subscription ended with its consumer")
        #expect(after.first?.consumers == 0 && after.first?.depth == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func consumersAreCountedPerQueue(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("counted-consumers")
        let first = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        let session = try fixture.connection.createSession()
        _ = try session.createConsumer(for: .queue(queue), selector: "a = 1")
        _ = try session.createConsumer(for: .queue(queue), options: .exclusive)
        #expect(try stats(fixture, queue).consumers == 3)
        first.close()
        #expect(try stats(fixture, queue).consumers == 2)
        session.close()
        #expect(try stats(fixture, queue).consumers == 0)
    }
}
