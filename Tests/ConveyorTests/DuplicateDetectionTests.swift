import Conveyor
import Testing

/// A text message carrying an idempotency key.
private func keyed(_ text: String, _ id: String) throws -> Message {
    try Message.text(text).with(Message.duplicateIDProperty, id)
}

@Suite("Duplicate detection", .timeLimit(.minutes(1)))
struct DuplicateDetectionTests {
    @Test(arguments: StoreKind.allCases)
    func aMessageSentTwiceWithTheSameIDIsDeliveredOnce(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("idempotent")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(try keyed("order-1", "o-1"))
        try await producer.send(try keyed("order-1 retried", "o-1"))  // accepted without error, but not delivered
        try await producer.send(try keyed("order-2", "o-2"))
        try await producer.send(.text("no key"))
        try await producer.send(.text("no key"))
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(5, timeout: .milliseconds(200)).map(\.text) == ["order-1", "order-2", "no key", "no key"])
        #expect(fixture.broker.statistics(for: queue)?.enqueued == 4)
        try await producer.send(try keyed("order-1 much later", "o-1"))
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil, "the key is remembered after delivery")
    }

    @Test(arguments: StoreKind.allCases)
    func duplicateIDsAreRememberedPerDestination(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let producer = try fixture.connection.createSession().createProducer()
        try await producer.send(try keyed("to a", "same"), to: .queue(Queue("dup-a")))
        try await producer.send(try keyed("to b", "same"), to: .queue(Queue("dup-b")))
        let session = try fixture.connection.createSession()
        #expect(try await session.createConsumer(for: .queue(Queue("dup-a"))).receive(timeout: .seconds(1))?.text == "to a")
        #expect(try await session.createConsumer(for: .queue(Queue("dup-b"))).receive(timeout: .seconds(1))?.text == "to b")
    }

    @Test(arguments: StoreKind.allCases)
    func aWindowOfZeroTurnsDetectionOff(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        configuration.duplicateDetectionWindow = 0
        let fixture = try Fixture(kind, clientID: "nodup", configuration: configuration)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("no-detection"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(try keyed("first", "k"))
        try await producer.send(try keyed("second", "k"))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(2).map(\.text) == ["first", "second"])

        let topic = Topic("no-detection")
        let subscriber = try fixture.connection.createSession().createConsumer(for: .topic(topic))
        let publisher = try fixture.connection.createSession().createProducer(for: .topic(topic))
        try await publisher.send(try keyed("first", "k"))
        try await publisher.send(try keyed("second", "k"))
        #expect(try await subscriber.receive(2).map(\.text) == ["first", "second"])
    }

    @Test(arguments: StoreKind.allCases)
    func theWindowForgetsTheOldestIDs(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        configuration.duplicateDetectionWindow = 2
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("small-window"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        for id in ["a", "b", "c"] { try await producer.send(try keyed(id, id)) }
        try await producer.send(try keyed("a again", "a"))  // "a" fell out of the window of two
        try await producer.send(try keyed("a twice", "a"))  // …but is in it again now
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(6, timeout: .milliseconds(200)).map(\.text) == ["a", "b", "c", "a again"])
    }

    @Test(arguments: StoreKind.allCases)
    func topicsDetectDuplicatesOnPublish(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "dup-topic")
        defer { fixture.close() }
        let topic = Topic("dup-topic")
        let session = try fixture.connection.createSession()
        let plain = try session.createConsumer(for: .topic(topic))
        let durable = try await session.createDurableConsumer(for: topic, name: "d")
        let producer = try session.createProducer(for: .topic(topic))
        try await producer.send(try keyed("tick", "t-1"))
        try await producer.send(try keyed("tick again", "t-1"))
        try await producer.send(try keyed("tock", "t-2"))
        #expect(try await plain.receive(3, timeout: .milliseconds(200)).map(\.text) == ["tick", "tock"])
        #expect(try await durable.receive(3, timeout: .milliseconds(200)).map(\.text) == ["tick", "tock"])
    }

    @Test(arguments: StoreKind.allCases)
    func transactedSendsAreDeduplicatedAndARollbackDoesNotUseTheID(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("dup-tx"))
        let session = try fixture.connection.createSession(.transacted)
        let producer = try session.createProducer(for: queue)

        try await producer.send(try keyed("rolled back", "r"))
        try await session.rollback()
        try await producer.send(try keyed("x", "x"))
        try await producer.send(try keyed("x in the same transaction", "x"))
        try await producer.send(try keyed("r after rollback", "r"))
        try await session.commit()
        try await producer.send(try keyed("x in a later transaction", "x"))
        try await session.commit()

        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(4, timeout: .milliseconds(200)).map(\.text) == ["x", "r after rollback"])
        // A transacted send and a plain one share the window.
        let plain = try fixture.connection.createSession().createProducer(for: queue)
        try await plain.send(try keyed("x sent plainly", "x"))
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func aSendRejectedByAFullQueueDoesNotUseUpItsID(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        var policy = DestinationPolicy()
        policy.limits = DestinationLimits(maximumMessages: 1, overflow: .reject)
        configuration.policies["dup-full"] = policy
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("dup-full"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("filler"))
        await expectError(.resourceAllocation) { try await producer.send(try keyed("important", "k-1")) }
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "filler")
        // The idempotent producer retries after the failure: the broker never accepted "k-1", so it
        // must accept it now, or the message is lost.
        try await producer.send(try keyed("important", "k-1"))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "important")
    }

    @Test(arguments: StoreKind.allCases)
    func aCommitRejectedByAFullQueueDoesNotUseUpItsID(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        var policy = DestinationPolicy()
        policy.limits = DestinationLimits(maximumMessages: 1, overflow: .reject)
        configuration.policies["dup-full-tx"] = policy
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("dup-full-tx"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("filler"))
        let session = try fixture.connection.createSession(.transacted)
        let producer = try session.createProducer(for: queue)
        try await producer.send(try keyed("important", "k-tx"))
        do {
            try await session.commit()
            Issue.record("the commit into a full queue must fail")
        } catch {}
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "filler")
        try await producer.send(try keyed("important", "k-tx"))
        try await session.commit()
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "important")
    }

    @Test(arguments: StoreKind.allCases)
    func storedMessagesStillCountAsSeenAfterARestart(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let queue = Destination.queue(Queue("dup-restart"))
        try await fixture.connection.createSession().createProducer(for: queue).send(try keyed("original", "k"))
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        try await reopened.connection.createSession().createProducer(for: queue).send(try keyed("retry after restart", "k"))
        let consumer = try reopened.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(2, timeout: .milliseconds(200)).map(\.text) == ["original"])
    }

    @Test(arguments: StoreKind.allCases)
    func nonStringIDsWork(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("dup-int"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(try Message.text("one").with(Message.duplicateIDProperty, 42))
        try await producer.send(try Message.text("one again").with(Message.duplicateIDProperty, 42))
        try await producer.send(try Message.text("two").with(Message.duplicateIDProperty, 43))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(3, timeout: .milliseconds(200)).map(\.text) == ["one", "two"])
    }
}
