import Conveyor
import Testing

/// A configuration whose default policy allows `maximumRedeliveries` with `initialDelay`.
private func configuration(maximumRedeliveries: Int, initialDelay: Duration = .zero, backoffMultiplier: Double = 1) -> BrokerConfiguration {
    var configuration = BrokerConfiguration()
    configuration.defaultPolicy.redelivery = RedeliveryPolicy(
        maximumRedeliveries: maximumRedeliveries, initialDelay: initialDelay, backoffMultiplier: backoffMultiplier)
    return configuration
}

@Suite("Redelivery policy and dead letters", .timeLimit(.minutes(1)))
struct RedeliveryPolicyTests {
    @Test func backoffDelaysGrowAndAreCapped() {
        let policy = RedeliveryPolicy(maximumRedeliveries: 8, initialDelay: .milliseconds(100), backoffMultiplier: 2, maximumDelay: .milliseconds(500))
        #expect((1...6).map { policy.delay(beforeRedelivery: $0) } == [100, 200, 400, 500, 500, 500].map { Duration.milliseconds($0) })

        let uncapped = RedeliveryPolicy(maximumRedeliveries: 8, initialDelay: .milliseconds(100), backoffMultiplier: 2)
        #expect(uncapped.delay(beforeRedelivery: 10) == .milliseconds(51_200))
        let triple = RedeliveryPolicy(maximumRedeliveries: 3, initialDelay: .seconds(1), backoffMultiplier: 3)
        #expect(triple.delay(beforeRedelivery: 3) == .seconds(9))

        let constant = RedeliveryPolicy(maximumRedeliveries: 3, initialDelay: .milliseconds(250))
        #expect((1...4).map { constant.delay(beforeRedelivery: $0) } == Array(repeating: .milliseconds(250), count: 4))

        let immediate = RedeliveryPolicy(maximumRedeliveries: 3, backoffMultiplier: 5)
        #expect(immediate.delay(beforeRedelivery: 1) == .zero && immediate.delay(beforeRedelivery: 4) == .zero)
    }

    @Test func theDefaultPolicyIsSixImmediateRedeliveriesToDLQ() {
        let policy = DestinationPolicy()
        #expect(policy.redelivery.maximumRedeliveries == 6)
        #expect(policy.redelivery.initialDelay == .zero)
        #expect(policy.redelivery.delay(beforeRedelivery: 1) == .zero)
        #expect(policy.deadLetterQueue == nil && policy.expiryQueue == nil)
        #expect(policy.limits.maximumMessages == nil && policy.limits.maximumBytes == nil)
        #expect(BrokerConfiguration().policy(for: "anything") == policy)
    }

    @Test(arguments: StoreKind.allCases)
    func afterTheMaximumRedeliveriesTheMessageGoesToTheDeadLetterQueueIntact(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 2))
        defer { fixture.close() }
        let queue = Queue("jobs")
        var poison = try Message.text("poison").with("order", 42).with("customer", "acme")
        poison.correlationID = "corr-1"
        poison.type = "job"
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(poison, options: SendOptions(priority: 7))
        try await producer.send(.text("next"), options: SendOptions(priority: 1))

        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(queue))
        for attempt in 1...3 {  // one delivery and two redeliveries
            let message = try #require(try await consumer.receive(timeout: .seconds(1)))
            #expect(message.text == "poison" && message.deliveryCount == attempt)
            try await session.rollback()
        }
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "next", "the poison message is not delivered a fourth time")
        try await session.commit()
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)

        let deadLetters = try fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.jobs")))
        let dead = try #require(try await deadLetters.receive(timeout: .seconds(1)))
        #expect(dead.text == "poison")
        #expect(try dead.property("order", as: Int.self) == 42)
        #expect(try dead.property("customer", as: String.self) == "acme")
        #expect(dead.correlationID == "corr-1" && dead.type == "job" && dead.priority == 7)
        #expect(dead.deliveryMode == .persistent)
        let original = try #require(try dead.property(Broker.originalDestinationProperty, as: String.self))
        #expect(try Destination(parsing: original) == .queue(queue))
        #expect(try dead.property(Broker.deliveryCountProperty, as: Int.self) == 3)
        let reason = try dead.property(Broker.deadLetterReasonProperty, as: String.self) ?? ""
        #expect(!reason.isEmpty)
        #expect(dead.destination == .queue(Queue("DLQ.jobs")))
        #expect(dead.deliveryCount == 1 && !dead.redelivered, "a dead letter starts a fresh delivery count")
        #expect(dead.messageID != nil)

        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.deadLettered == 1 && stats.dequeued == 1 && stats.depth == 0 && stats.inFlight == 0)
        #expect(fixture.broker.statistics(for: Queue("DLQ.jobs"))?.enqueued == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func theDefaultPolicyAllowsSixRedeliveries(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("six"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("x"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: queue)
        for attempt in 1...7 {
            let message = try #require(try await consumer.receive(timeout: .seconds(1)), "delivery \(attempt)")
            #expect(message.deliveryCount == attempt)
            try await session.recover()
        }
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil)
        let dead = try #require(try await fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.six"))).receive(timeout: .seconds(1)))
        #expect(try dead.property(Broker.deliveryCountProperty, as: Int.self) == 7)
    }

    @Test(arguments: StoreKind.allCases)
    func aListenerThatAlwaysFailsSendsTheMessageToTheDeadLetterQueue(kind: StoreKind) async throws {
        struct Failure: Error {}
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 1))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("failing"))
        let attempts = Recorder<Int>()
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        try consumer.setMessageListener { message in
            attempts.append(message.deliveryCount)
            throw Failure()
        }
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("bad"))
        let dead = try await fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.failing"))).receive(timeout: .seconds(5))
        #expect(dead?.text == "bad")
        #expect(attempts.all == [1, 2])
        #expect(fixture.broker.statistics(for: Queue("failing"))?.deadLettered == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func unlimitedRedeliveriesNeverDeadLetter(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: -1))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("forever"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("again"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        for _ in 1...12 {
            #expect(try await consumer.receive(timeout: .seconds(1)) != nil)
            try await session.rollback()
        }
        #expect(try await consumer.receive(timeout: .seconds(1))?.deliveryCount == 13)
        #expect(fixture.broker.statistics(for: Queue("DLQ.forever")) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func aMessageWaitingOutItsRedeliveryDelayDoesNotBlockTheMessagesBehindIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 5, initialDelay: .milliseconds(500)))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("delayed-redelivery"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("A"))
        try await producer.send(.text("B"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "A")
        try await session.rollback()
        let rolledBack = ContinuousClock.now
        let next = try #require(try await consumer.receive(timeout: .seconds(1)))
        #expect(next.text == "B", "B is not stuck behind A's redelivery delay")
        #expect(!next.redelivered)
        #expect(ContinuousClock.now - rolledBack < .milliseconds(450), "B came at once")
        try await session.commit()
        #expect(fixture.broker.statistics(for: Queue("delayed-redelivery"))?.depth == 1, "A waits, counted in the depth")

        let again = try #require(try await consumer.receive(timeout: .seconds(5)))
        #expect(again.text == "A" && again.redelivered && again.deliveryCount == 2)
        #expect(ContinuousClock.now - rolledBack >= .milliseconds(450), "A waited out the redelivery delay")
        try await session.commit()
    }

    @Test(arguments: StoreKind.allCases)
    func aPoisonMessageDoesNotStallAListener(kind: StoreKind) async throws {
        struct Failure: Error {}
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 2, initialDelay: .milliseconds(500)))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("poison-listener"))
        let seen = Recorder<String>()
        // Everything is queued before the listener starts, so only the redelivery delay decides the order.
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("poison"))
        try await producer.sendTexts(3)
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        try consumer.setMessageListener { message in
            let text = message.text ?? ""
            seen.append("\(text)#\(message.deliveryCount)")
            if text == "poison" { throw Failure() }
        }
        #expect(await seen.waitForCount(4))
        #expect(seen.all.prefix(4) == ["poison#1", "0#1", "1#1", "2#1"], "the healthy messages go first")
        let dead = try fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.poison-listener")))
        #expect(try await dead.receive(timeout: .seconds(5))?.text == "poison")
        #expect(seen.all == ["poison#1", "0#1", "1#1", "2#1", "poison#2", "poison#3"])
    }

    @Test(arguments: StoreKind.allCases)
    func redeliveryDelaysBackOff(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 5, initialDelay: .milliseconds(150), backoffMultiplier: 3))
        defer { fixture.close() }
        let queue = Destination.queue(Queue("backoff"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("retry"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1)) != nil)
        try await session.recover()
        var start = ContinuousClock.now
        #expect(try await consumer.receive(timeout: .seconds(5))?.deliveryCount == 2)
        let first = ContinuousClock.now - start
        try await session.recover()
        start = ContinuousClock.now
        #expect(try await consumer.receive(timeout: .seconds(5))?.deliveryCount == 3)
        let second = ContinuousClock.now - start
        #expect(first >= .milliseconds(140), "first redelivery waits about 150 ms, waited \(first)")
        #expect(second >= .milliseconds(440), "second redelivery waits about 450 ms, waited \(second)")
    }

    @Test(arguments: StoreKind.allCases)
    func aPerDestinationPolicyOverridesTheDefault(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        var strict = DestinationPolicy()
        strict.redelivery = RedeliveryPolicy(maximumRedeliveries: 0)
        strict.deadLetterQueue = Queue("strict-dead")
        configuration.policies["strict"] = strict
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let producer = try fixture.connection.createSession().createProducer()
        try await producer.send(.text("s"), to: .queue(Queue("strict")))
        try await producer.send(.text("l"), to: .queue(Queue("lenient")))

        let session = try fixture.connection.createSession(.transacted)
        let strictConsumer = try session.createConsumer(for: .queue(Queue("strict")))
        let lenientConsumer = try session.createConsumer(for: .queue(Queue("lenient")))
        #expect(try await strictConsumer.receive(timeout: .seconds(1))?.text == "s")
        #expect(try await lenientConsumer.receive(timeout: .seconds(1))?.text == "l")
        try await session.rollback()
        #expect(try await strictConsumer.receive(timeout: .milliseconds(100)) == nil, "maximumRedeliveries 0: no second delivery")
        #expect(try await lenientConsumer.receive(timeout: .seconds(1))?.deliveryCount == 2, "the default policy redelivers")
        try await session.commit()

        let dead = try await fixture.connection.createSession().createConsumer(for: .queue(Queue("strict-dead"))).receive(timeout: .seconds(1))
        #expect(dead?.text == "s")
        #expect(fixture.broker.statistics(for: Queue("DLQ.strict")) == nil, "the configured dead letter queue is used instead")
    }

    @Test(arguments: StoreKind.allCases)
    func aTopicPolicyAppliesToItsSubscriptions(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        var events = DestinationPolicy()
        events.redelivery = RedeliveryPolicy(maximumRedeliveries: 0)
        configuration.policies["events"] = events
        let fixture = try Fixture(kind, clientID: "ev", configuration: configuration)
        defer { fixture.close() }
        let topic = Topic("events")
        let session = try fixture.connection.createSession(.transacted)
        let subscriber = try await session.createDurableConsumer(for: topic, name: "audit")
        try await fixture.connection.createSession().createProducer(for: .topic(topic)).send(.text("event"))
        #expect(try await subscriber.receive(timeout: .seconds(1))?.text == "event")
        try await session.rollback()
        #expect(try await subscriber.receive(timeout: .milliseconds(100)) == nil)
        let dead = try #require(try await fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.events"))).receive(timeout: .seconds(1)))
        #expect(dead.text == "event")
        let original = try #require(try dead.property(Broker.originalDestinationProperty, as: String.self))
        #expect(try Destination(parsing: original) == .topic(topic))
    }

    @Test(arguments: StoreKind.allCases)
    func deadLettersSurviveARestartAndTheOriginalStaysGone(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 0))
        let queue = Destination.queue(Queue("dead-restart"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("doomed"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1)) != nil)
        try await session.rollback()
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil)
        #expect(await waitUntil { fixture.broker.statistics(for: Queue("DLQ.dead-restart"))?.depth == 1 })
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let session2 = try reopened.connection.createSession()
        #expect(try await session2.createConsumer(for: queue).receive(timeout: .milliseconds(100)) == nil)
        let dead = try #require(try await session2.createConsumer(for: .queue(Queue("DLQ.dead-restart"))).receive(timeout: .seconds(1)))
        #expect(dead.text == "doomed")
        #expect(try dead.property(Broker.deliveryCountProperty, as: Int.self) == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func deliveryCountsSurviveARestartSoTheLimitStillApplies(kind: StoreKind) async throws {
        let policy = configuration(maximumRedeliveries: 1)
        let fixture = try Fixture(kind, configuration: policy)
        let queue = Destination.queue(Queue("crashy"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("crashes the app"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        #expect(try await session.createConsumer(for: queue).receive(timeout: .seconds(1))?.deliveryCount == 1)
        fixture.close()  // the application died without acknowledging

        let broker = try Broker(store: try fixture.location.makeStore(), configuration: policy)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        let transacted = try connection.createSession(.transacted)
        let consumer = try transacted.createConsumer(for: queue)
        let again = try #require(try await consumer.receive(timeout: .seconds(1)))
        #expect(again.deliveryCount == 2 && again.redelivered)
        try await transacted.rollback()
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil, "one redelivery was allowed, and it happened")
        let dead = try await connection.createSession().createConsumer(for: .queue(Queue("DLQ.crashy"))).receive(timeout: .seconds(1))
        #expect(try dead?.property(Broker.deliveryCountProperty, as: Int.self) == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func aDeadLetterConsumedByAListenerStaysConsumedAfterARestart(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, configuration: configuration(maximumRedeliveries: 0))
        let queue = Destination.queue(Queue("dead-listener"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("to the DLQ"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1)) != nil)
        try await session.rollback()
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil)

        // Handle the dead letter with a listener (auto-acknowledge): it is acknowledged when the
        // listener returns, so it must be gone from the store too.
        let handled = Recorder<String>()
        let deadLetters = try fixture.connection.createSession().createConsumer(for: .queue(Queue("DLQ.dead-listener")))
        try deadLetters.setMessageListener { message in handled.append(message.text ?? "") }
        #expect(await handled.waitForCount(1))
        #expect(await waitUntil { fixture.broker.statistics(for: Queue("DLQ.dead-listener"))?.dequeued == 1 })
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let back = try reopened.connection.createSession().createConsumer(for: .queue(Queue("DLQ.dead-listener")))
        #expect(try await back.receive(timeout: .milliseconds(200)) == nil, "an acknowledged dead letter does not come back")
    }
}
