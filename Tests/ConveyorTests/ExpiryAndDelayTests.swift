import Conveyor
import Foundation
import Testing

/// The wall-clock time in milliseconds since 1970, the unit of `expiration` and `deliveryTime`.
private func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

/// Waits until the wall clock is past `millis` (a message's expiration or delivery time).
/// Receives a delayed message, checking that it is never handed out before its delivery time.
///
/// Under a loaded machine a send can take longer than the delay, so "nothing arrives in the next
/// 100 ms" cannot be asserted blindly; what must always hold is that a message received is due.
private func receiveWhenDue(_ consumer: MessageConsumer, timeout: Duration = .seconds(5)) async throws -> Message? {
    guard let message = try await consumer.receive(timeout: timeout) else { return nil }
    #expect(nowMillis() >= message.deliveryTime, "delivered \(message.deliveryTime - nowMillis()) ms before its delivery time")
    return message
}

/// Whether `deliveryTime` is still far enough away for a short "nothing yet" check to be meaningful.
private func isStillAhead(_ deliveryTime: Int64) -> Bool { nowMillis() + 150 < deliveryTime }

private func waitUntilPast(_ millis: Int64) async -> Bool {
    await waitUntil { nowMillis() > millis }
}

@Suite("Time-to-live and delivery delay", .timeLimit(.minutes(1)))
struct ExpiryAndDelayTests {
    // MARK: Time-to-live

    @Test(arguments: StoreKind.allCases)
    func anExpiredMessageIsNeverDeliveredAndIsCounted(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("ttl")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        let short = try await producer.send(try Message.text("short").with("kind", "ttl"), options: SendOptions(timeToLive: .milliseconds(30)))
        #expect(short.expiration >= short.timestamp + 30)
        let forever = try await producer.send(.text("forever"))
        #expect(forever.expiration == 0)
        #expect(await waitUntilPast(short.expiration))
        #expect(try session.createBrowser(for: queue).messages().map(\.text) == ["forever"], "browsers do not show expired messages")

        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(2, timeout: .milliseconds(200)).map(\.text) == ["forever"])
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.expired == 1)
        #expect(stats.depth == 0 && stats.inFlight == 0)
        #expect(stats.enqueued == 2 && stats.dequeued == 1)
        #expect(fixture.broker.statistics(for: Queue("DLQ.ttl")) == nil, "expired messages are not dead letters")
    }

    @Test(arguments: StoreKind.allCases)
    func aMessageThatExpiresInThePrefetchBufferIsNotDelivered(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("ttl-prefetched")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(.text("first"))
        let doomed = try await producer.send(.text("doomed"), options: SendOptions(timeToLive: .milliseconds(1500)))
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "first")  // "doomed" is prefetched now
        #expect(await waitUntilPast(doomed.expiration))
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)
        #expect(fixture.broker.statistics(for: queue)?.expired == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func expiredMessagesAreRemovedAndCountedEvenWithoutAConsumer(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("ttl-unconsumed")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.sendTexts(3, options: SendOptions(timeToLive: .milliseconds(20)))
        // Nobody consumes this queue: the broker itself must notice that the messages died.
        let removed = await waitUntil(timeout: .seconds(10)) {
            let stats = fixture.broker.statistics(for: queue)
            return stats?.expired == 3 && stats?.depth == 0
        }
        #expect(removed, "statistics: \(String(describing: fixture.broker.statistics(for: queue)))")
    }

    @Test(arguments: StoreKind.allCases)
    func expiredMessagesMoveToTheExpiryQueueWithTheirContent(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        configuration.policies["perishable"] = {
            var policy = DestinationPolicy()
            policy.expiryQueue = Queue("expired")
            return policy
        }()
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Queue("perishable")
        let session = try fixture.connection.createSession()
        var message = try Message.text("milk").with("batch", 7)
        message.correlationID = "c-7"
        message.type = "dairy"
        let sent = try await session.createProducer(for: .queue(queue))
            .send(message, options: SendOptions(priority: 6, timeToLive: .milliseconds(30)))
        #expect(await waitUntilPast(sent.expiration))
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil)

        let moved = try #require(try await session.createConsumer(for: .queue(Queue("expired"))).receive(timeout: .seconds(2)))
        #expect(moved.text == "milk")
        #expect(try moved.property("batch", as: Int.self) == 7)
        #expect(moved.correlationID == "c-7" && moved.type == "dairy" && moved.priority == 6)
        let original = try #require(try moved.property(Broker.originalDestinationProperty, as: String.self))
        #expect(try Destination(parsing: original) == .queue(queue))
        #expect(try moved.property(Broker.deadLetterReasonProperty, as: String.self)?.isEmpty == false)
        #expect(moved.expiration == 0, "the copy in the expiry queue does not expire again")
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.expired == 1 && stats.depth == 0 && stats.deadLettered == 0)
        #expect(fixture.broker.statistics(for: Queue("expired"))?.enqueued == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func aMessageThatExpiresInARolledBackTransactionIsNotRedelivered(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("ttl-rollback")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        // Long enough to be received before it expires even when the parallel suite loads the machine.
        let doomed = try await producer.send(.text("doomed"), options: SendOptions(priority: 9, timeToLive: .seconds(4)))
        try await producer.send(.text("survivor"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(queue))
        let first = try await consumer.receive(timeout: .seconds(1))
        #expect(first?.text == "doomed", "got \(String(describing: first?.text)), \(doomed.expiration - nowMillis()) ms before expiry")
        #expect(await waitUntilPast(doomed.expiration))
        try await session.rollback()
        #expect(try await consumer.receive(2, timeout: .milliseconds(200)).map(\.text) == ["survivor"])
        try await session.commit()
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.expired == 1 && stats.dequeued == 1 && stats.depth == 0 && stats.inFlight == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func expiryAppliesToSubscriptionsToo(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "ttl-sub")
        defer { fixture.close() }
        let topic = Topic("ttl-topic")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "d").close()
        let producer = try session.createProducer(for: .topic(topic))
        let doomed = try await producer.send(.text("doomed"), options: SendOptions(timeToLive: .milliseconds(30)))
        try await producer.send(.text("kept"))
        #expect(await waitUntilPast(doomed.expiration))
        let back = try await session.createDurableConsumer(for: topic, name: "d")
        #expect(try await back.receive(2, timeout: .milliseconds(200)).map(\.text) == ["kept"])
        let stats = try #require(fixture.broker.statistics().first { $0.name == "topic://ttl-topic#ttl-sub:d" })
        #expect(stats.expired == 1)
    }

    // MARK: Delivery delay

    @Test(arguments: StoreKind.allCases)
    func aDelayedMessageIsInvisibleUntilItsTimeAndDoesNotBlockOthers(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("delay")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        let late = try await producer.send(.text("late"), options: SendOptions(priority: 9, deliveryDelay: .milliseconds(1500)))
        #expect(late.deliveryTime >= late.timestamp + 1500)
        try await producer.send(.text("now"))
        let consumer = try session.createConsumer(for: .queue(queue))
        if isStillAhead(late.deliveryTime) {
            #expect(try await consumer.receive(timeout: .seconds(1))?.text == "now", "the delayed message does not hold up later ones")
        }
        if isStillAhead(late.deliveryTime) {
            #expect(fixture.broker.statistics(for: queue)?.depth ?? 0 >= 1, "a delayed message counts in the depth")
        }
        var arrived = try #require(try await receiveWhenDue(consumer))
        if arrived.text == "now" { arrived = try #require(try await receiveWhenDue(consumer)) }
        #expect(arrived.text == "late")
        #expect(nowMillis() >= late.deliveryTime)
        #expect(arrived.deliveryCount == 1 && !arrived.redelivered)
    }

    @Test(arguments: StoreKind.allCases)
    func delayedMessagesBecomeVisibleInDueOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("delay-order"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        // The gap is wide so that a loaded machine cannot make both due before the first receive.
        try await producer.send(.text("slow"), options: SendOptions(deliveryDelay: .milliseconds(4000)))
        try await producer.send(.text("fast"), options: SendOptions(deliveryDelay: .milliseconds(200)))
        let received = try await consumer.receive(2, timeout: .seconds(8))
        #expect(received.map(\.text) == ["fast", "slow"], "\(received.map { ($0.text ?? "", $0.deliveryTime) })")
    }

    @Test(arguments: StoreKind.allCases)
    func aWaitingReceiveGetsADelayedMessageWhenItIsDue(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("delay-wait"))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let waiting = Task { try await consumer.receive(timeout: .seconds(5)) }
        let sent = try await fixture.connection.createSession().createProducer(for: queue)
            .send(.text("due"), options: SendOptions(deliveryDelay: .milliseconds(200)))
        let received = try await waiting.value
        #expect(received?.text == "due")
        #expect(nowMillis() >= sent.deliveryTime)
    }

    @Test(arguments: StoreKind.allCases)
    func aDelayedPublicationReachesSubscribersWhenDue(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let topic = Destination.topic(Topic("delay-topic"))
        let subscriber = try fixture.connection.createSession().createConsumer(for: topic)
        let producer = try fixture.connection.createSession().createProducer(for: topic)
        let sent = try await producer.send(.text("later"), options: SendOptions(deliveryDelay: .milliseconds(1000)))
        #expect(try await receiveWhenDue(subscriber)?.text == "later")
        #expect(nowMillis() >= sent.deliveryTime)
    }

    @Test(arguments: StoreKind.allCases)
    func aDelayedMessageSurvivesABrokerRestartAndStaysDelayed(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let queue = Destination.queue(Queue("delay-restart"))
        let sent = try await fixture.connection.createSession().createProducer(for: queue)
            .send(.text("scheduled"), options: SendOptions(deliveryDelay: .milliseconds(1500)))
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let consumer = try reopened.connection.createSession().createConsumer(for: queue)
        let received = try #require(try await receiveWhenDue(consumer), "still delayed after the restart, then delivered")
        #expect(received.text == "scheduled")
        #expect(received.deliveryTime == sent.deliveryTime)
        #expect(nowMillis() >= sent.deliveryTime)
    }

    @Test(arguments: StoreKind.allCases)
    func aTransactedDelayedSendIsDelayedAfterCommit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("delay-tx"))
        let session = try fixture.connection.createSession(.transacted)
        let sent = try await session.createProducer(for: queue).send(.text("tx-late"), options: SendOptions(deliveryDelay: .milliseconds(1200)))
        try await session.commit()
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await receiveWhenDue(consumer)?.text == "tx-late")
        #expect(nowMillis() >= sent.deliveryTime)
    }

    @Test(arguments: StoreKind.allCases)
    func aDelayedMessageThatExpiresBeforeItsDeliveryTimeIsNeverDelivered(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("delay-then-expire")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        let sent = try await producer.send(.text("too late"), options: SendOptions(timeToLive: .milliseconds(100), deliveryDelay: .milliseconds(300)))
        #expect(sent.expiration < sent.deliveryTime)
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1)) == nil)
        #expect(await waitUntil { fixture.broker.statistics(for: queue)?.expired == 1 })
        #expect(fixture.broker.statistics(for: queue)?.depth == 0)
    }
}
