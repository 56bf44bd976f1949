@testable import Conveyor
import Synchronization
import Testing

/// Behaviours of connections, sessions, consumers, producers and browsers that the Jakarta
/// Messaging 3.1 specification (and its TCK) checks, beyond the suites of each area.
@Suite("Jakarta Messaging conformance", .timeLimit(.minutes(1)))
struct JMSConformanceTests {
    // MARK: Connections

    @Test(arguments: StoreKind.allCases)
    func closingTheConnectionRollsBackOpenTransactions(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("conn-close-tx"))
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        try await other.createSession().createProducer(for: queue).sendTexts(2)
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(2).map(\.text) == ["0", "1"])
        try await session.createProducer(for: queue).send(.text("never"))
        fixture.connection.close()
        await expectError(.illegalState) { try await session.commit() }
        try other.start()
        let back = try await other.createSession().createConsumer(for: queue).receive(3, timeout: .milliseconds(300))
        #expect(back.map(\.text) == ["0", "1"])
        #expect(back.allSatisfy { $0.redelivered && $0.deliveryCount == 2 })
    }

    @Test
    func metaDataNamesTheJMSVersionTheProviderAndTheSupportedJMSXProperties() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let metaData = try fixture.connection.metaData()
        #expect(metaData.jmsVersion == "3.1")
        #expect(metaData.jmsMajorVersion == 3 && metaData.jmsMinorVersion == 1)
        #expect(metaData.providerName == "Conveyor")
        #expect(metaData.providerVersion == "\(metaData.providerMajorVersion).\(metaData.providerMinorVersion).0")
        // JMS 2.0 requires JMSXGroupID, JMSXGroupSeq and JMSXDeliveryCount; every name listed works.
        #expect(Set(metaData.jmsxPropertyNames) == ["JMSXGroupID", "JMSXGroupSeq", "JMSXDeliveryCount"])
        let queue = Destination.queue(Queue("jmsx-listed"))
        let session = try fixture.connection.createSession()
        try await session.createProducer(for: queue)
            .send(try Message.text("x").with("JMSXGroupID", "g").with("JMSXGroupSeq", 1))
        let received = try #require(try await session.createConsumer(for: queue).receive(timeout: .seconds(1)))
        for name in metaData.jmsxPropertyNames { #expect(received.propertyExists(name), "\(name)") }
        fixture.connection.close()
        await expectError(.illegalState) { try fixture.connection.metaData() }
    }

    @Test(arguments: StoreKind.allCases)
    func aClosedConnectionReleasesItsClientID(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "reused")
        defer { fixture.close() }
        let factory = ConnectionFactory(broker: fixture.broker)
        await expectError(.invalidClientID) { try factory.createConnection(clientID: "reused") }
        let anonymous = try factory.createConnection()
        await expectError(.invalidClientID) { try anonymous.setClientID("reused") }
        fixture.connection.close()
        try anonymous.setClientID("reused")
        #expect(anonymous.clientID == "reused")
    }

    @Test(arguments: StoreKind.allCases)
    func closedConnectionRefusesEveryCall(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "closed-calls")
        defer { fixture.close() }
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let queue = Destination.queue(Queue("closed-calls"))
        let producer = try session.createProducer(for: queue)
        let consumer = try session.createConsumer(for: queue)
        try await producer.send(.text("x"))
        let message = try #require(try await consumer.receive(timeout: .seconds(1)))
        fixture.connection.close()
        fixture.connection.close()
        #expect(producer.isClosed && consumer.isClosed && session.isClosed)
        await expectError(.illegalState) { try fixture.connection.stop() }
        await expectError(.illegalState) { try fixture.connection.setClientID("again") }
        await expectError(.illegalState) { try fixture.connection.createTemporaryQueue() }
        await expectError(.illegalState) { try fixture.connection.setExceptionListener { _ in } }
        await expectError(.illegalState) { try await fixture.connection.unsubscribe("x") }
        await expectError(.illegalState) { try await producer.send(.text("y")) }
        await expectError(.illegalState) { try await consumer.receiveNoWait() }
        await expectError(.illegalState) { try session.createBrowser(for: Queue("closed-calls")) }
        await expectError(.illegalState) { try await session.recover() }
        await expectError(.illegalState) { try await message.acknowledge() }
        session.close()
        consumer.close()
        producer.close()
    }

    // MARK: Acknowledgement

    @Test(arguments: StoreKind.allCases)
    func clientAcknowledgeCoversEveryConsumerOfTheSession(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let a = Destination.queue(Queue("ack-a"))
        let b = Destination.queue(Queue("ack-b"))
        let sender = try fixture.connection.createSession()
        try await sender.createProducer(for: a).send(.text("a"))
        try await sender.createProducer(for: b).send(.text("b"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let fromA = try #require(try await session.createConsumer(for: a).receive(timeout: .seconds(1)))
        let fromB = try #require(try await session.createConsumer(for: b).receive(timeout: .seconds(1)))
        #expect(fromB.text == "b")
        try await fromA.acknowledge()
        session.close()
        let check = try fixture.connection.createSession()
        #expect(try await check.createConsumer(for: a).receive(timeout: .milliseconds(50)) == nil)
        #expect(try await check.createConsumer(for: b).receive(timeout: .milliseconds(50)) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func closingAClientAckSessionReturnsMessagesInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("close-order"))
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(5)
        let session = try fixture.connection.createSession(.clientAcknowledge)
        #expect(try await session.createConsumer(for: queue).receive(3).map(\.text) == ["0", "1", "2"])
        session.close()
        let again = try await fixture.connection.createSession().createConsumer(for: queue).receive(5)
        #expect(again.map(\.text) == ["0", "1", "2", "3", "4"])
        #expect(again.map(\.redelivered) == [true, true, true, false, false])
    }

    @Test(arguments: StoreKind.allCases)
    func acknowledgeIsIgnoredInATransactedSession(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("tx-ack"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("x"))
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        let message = try #require(try await consumer.receive(timeout: .seconds(1)))
        try await message.acknowledge()
        try await session.rollback()
        let again = try #require(try await consumer.receive(timeout: .seconds(1)))
        #expect(again.redelivered && again.deliveryCount == 2)
        try await session.commit()
    }

    @Test(arguments: StoreKind.allCases, [SessionMode.clientAcknowledge, .transacted])
    func aListenerThatThrowsGetsTheNextMessageInClientAndTransactedModes(kind: StoreKind, mode: SessionMode) async throws {
        struct Failure: Error {}
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("throws-\(mode)"))
        let session = try fixture.connection.createSession(mode)
        let seen = Recorder<Message>()
        try session.createConsumer(for: queue).setMessageListener { message in
            seen.append(message)
            if message.text == "0" { throw Failure() }
        }
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2)
        #expect(await seen.waitForCount(2))
        #expect(seen.all.map(\.text) == ["0", "1"])
        #expect(seen.all.allSatisfy { !$0.redelivered })
    }

    @Test(arguments: StoreKind.allCases)
    func recoverInAnAutoAckListenerRedeliversTheCurrentMessage(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("auto-recover"))
        let session = try fixture.connection.createSession(.autoAcknowledge)
        let seen = Recorder<Message>()
        try session.createConsumer(for: queue).setMessageListener { message in
            seen.append(message)
            if seen.count == 1 { try await session.recover() }
        }
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("again"))
        #expect(await seen.waitForCount(2))
        let attempts = seen.all
        #expect(attempts.map(\.text) == ["again", "again"])
        #expect(attempts.last?.redelivered == true && attempts.last?.deliveryCount == 2)
        #expect(await waitUntil { fixture.broker.statistics(for: Queue("auto-recover"))?.dequeued == 1 })
    }

    @Test(arguments: StoreKind.allCases)
    func clientAckListenerRecoverRedeliversInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("client-listener-recover"))
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(3)
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let seen = Recorder<Message>()
        try session.createConsumer(for: queue).setMessageListener { message in
            seen.append(message)
            if seen.count == 2 { try await session.recover() }
            if seen.count == 5 { try await message.acknowledge() }
        }
        #expect(await seen.waitForCount(5))
        #expect(seen.all.map(\.text) == ["0", "1", "0", "1", "2"])
        #expect(seen.all.map(\.redelivered) == [false, false, true, true, false])
        #expect(await waitUntil { fixture.broker.statistics(for: Queue("client-listener-recover"))?.dequeued == 3 })
    }

    @Test(arguments: StoreKind.allCases)
    func closingAConsumerLeavesItsReceivesInTheTransaction(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("tx-closed-consumer"))
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2)
        let session = try fixture.connection.createSession(.transacted)
        let first = try session.createConsumer(for: queue)
        #expect(try await first.receive(timeout: .seconds(1))?.text == "0")
        first.close()
        try await session.rollback()
        let second = try session.createConsumer(for: queue)
        let again = try await second.receive(2)
        #expect(again.map(\.text) == ["0", "1"])
        #expect(again.map(\.redelivered) == [true, false])
        second.close()
        try await session.commit()
        #expect(try await fixture.connection.createSession().createConsumer(for: queue).receive(timeout: .milliseconds(50)) == nil)
    }

    // MARK: Consumers

    @Test(arguments: StoreKind.allCases)
    func closingAConsumerEndsAReceiveWaitingInAnotherTask(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(Queue("close-waiting")))
        let waiting = Task { try await consumer.receive() }
        #expect(await waitUntil { consumer.queue.isWaiting(consumer) })
        consumer.close()
        #expect(try await waiting.value == nil)
    }

    @Test(.timeLimit(.minutes(1)), arguments: StoreKind.allCases)
    func twoTasksReceivingFromOneConsumerBothGetAMessage(kind: StoreKind) async throws {
        // JMS leaves a session's concurrency to the application; a second waiting receive must
        // still not leave the first waiting for good.
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("two-receivers"))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let first = Task { try await consumer.receive(timeout: .seconds(20))?.text }
        let second = Task { try await consumer.receive(timeout: .seconds(20))?.text }
        #expect(await waitUntil { consumer.parkedReceives == 2 })

        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("a"))
        try await producer.send(.text("b"))
        let received = [try await first.value, try await second.value].compactMap { $0 }
        #expect(received.sorted() == ["a", "b"])
    }

    @Test(arguments: StoreKind.allCases)
    func aReceiveWaitingWhileStoppedGetsTheMessageAfterStart(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("stopped-wait"))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        try fixture.connection.stop()
        let returned = Atomic<Bool>(false)
        let waiting = Task {
            defer { returned.store(true, ordering: .relaxed) }
            return try await consumer.receive(timeout: .seconds(5))
        }
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        try await other.createSession().createProducer(for: queue).send(.text("later"))
        // A bounded check that nothing comes while stopped (the receive waits up to 5 s).
        #expect(await !waitUntil(timeout: .milliseconds(100)) { returned.load(ordering: .relaxed) })
        try fixture.connection.start()
        #expect(try await waiting.value?.text == "later")
    }

    @Test(arguments: StoreKind.allCases)
    func temporaryDestinationsAreRefusedOnceDeletedOrTheirConnectionCloses(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        let otherSession = try other.createSession()
        let temporary = try fixture.connection.createTemporaryQueue()
        let producer = try otherSession.createProducer(for: .queue(temporary))
        await expectError(.invalidDestination) { try otherSession.createConsumer(for: .queue(temporary)) }
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(temporary))
        await expectError(.illegalState) { try fixture.connection.deleteTemporary(.queue(temporary)) }
        consumer.close()
        try fixture.connection.deleteTemporary(.queue(temporary))
        await expectError(.invalidDestination) { try await producer.send(.text("gone")) }
        await expectError(.invalidDestination) { try await otherSession.createProducer().send(.text("gone"), to: .queue(temporary)) }

        let topic = try fixture.connection.createTemporaryTopic()
        let topicProducer = try otherSession.createProducer(for: .topic(topic))
        let anotherQueue = try fixture.connection.createTemporaryQueue()
        let queueProducer = try otherSession.createProducer(for: .queue(anotherQueue))
        fixture.connection.close()
        await expectError(.invalidDestination) { try await queueProducer.send(.text("gone")) }
        await expectError(.invalidDestination) { try await topicProducer.send(.text("gone")) }
    }

    // MARK: Durable subscriptions

    @Test(arguments: StoreKind.allCases)
    func aDurableSubscriptionToATemporaryTopicIsRefused(kind: StoreKind) async throws {
        // JMS: a durable subscription to a temporary topic makes no sense, a programming error a
        // provider may detect. Accepted, it outlived the topic in the store and kept the topic from
        // being deleted.
        let fixture = try Fixture(kind, clientID: "temp-durable")
        defer { fixture.close() }
        let topic = try fixture.connection.createTemporaryTopic()
        let session = try fixture.connection.createSession()
        let error = await expectError(.invalidDestination) { try await session.createDurableConsumer(for: topic, name: "d") }
        #expect(error?.message.contains(topic.description) == true, "\(error?.message ?? "")")
        await expectError(.invalidDestination) { try await session.createSharedDurableConsumer(for: topic, name: "s") }
        #expect(fixture.broker.durableSubscriptions().isEmpty)
        let subscriber = try session.createConsumer(for: .topic(topic))
        try await session.createProducer(for: .topic(topic)).send(.text("still usable"))
        #expect(try await subscriber.receive(timeout: .seconds(1))?.text == "still usable")
        subscriber.close()
        try fixture.connection.deleteTemporary(.topic(topic))
    }

    @Test(arguments: StoreKind.allCases)
    func unsubscribingAnUnknownNameIsAnInvalidDestination(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "unknown-sub")
        defer { fixture.close() }
        await expectError(.invalidDestination) { try await fixture.connection.unsubscribe("nothing") }
        await expectError(.invalidDestination) { try await fixture.connection.createSession().unsubscribe("nothing") }
    }

    @Test(arguments: StoreKind.allCases)
    func unsubscribingWhileAMessageIsUnacknowledgedIsIllegal(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "unacked-sub")
        defer { fixture.close() }
        let topic = Topic("unacked-sub")
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let consumer = try await session.createDurableConsumer(for: topic, name: "s")
        try await fixture.connection.createSession().createProducer(for: .topic(topic)).send(.text("x"))
        let message = try #require(try await consumer.receive(timeout: .seconds(1)))
        consumer.close()
        await expectError(.illegalState) { try await session.unsubscribe("s") }
        try await message.acknowledge()
        try await session.unsubscribe("s")
    }

    @Test(arguments: StoreKind.allCases)
    func changingTheTopicOfADurableSubscriptionReplacesIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "retopic")
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let first = try await session.createDurableConsumer(for: Topic("one"), name: "s")
        first.close()
        try await session.createProducer(for: .topic(Topic("one"))).send(.text("old"))
        let second = try await session.createDurableConsumer(for: Topic("two"), name: "s")
        #expect(try await second.receive(timeout: .milliseconds(50)) == nil, "the old subscription's messages are gone")
        try await session.createProducer(for: .topic(Topic("one"))).send(.text("not for us"))
        try await session.createProducer(for: .topic(Topic("two"))).send(.text("new"))
        #expect(try await second.receive(timeout: .seconds(1))?.text == "new")
        #expect(try await second.receive(timeout: .milliseconds(50)) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func sharedDurableSubscriptionSpansConnectionsWithoutClientID(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let topic = Topic("shared-across")
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        try other.start()
        let a = try await fixture.connection.createSession().createSharedDurableConsumer(for: topic, name: "s")
        let b = try await other.createSession().createSharedDurableConsumer(for: topic, name: "s")
        try await fixture.connection.createSession().createProducer(for: .topic(topic)).sendTexts(4)
        var texts: [String] = []
        while let message = try await a.receive(timeout: .milliseconds(100)) { texts.append(message.text ?? "") }
        while let message = try await b.receive(timeout: .milliseconds(100)) { texts.append(message.text ?? "") }
        #expect(texts.sorted() == ["0", "1", "2", "3"])
    }

    // MARK: Producers

    @Test(arguments: StoreKind.allCases)
    func providerHeadersFollowTheProducerDefaultsAndPerSendOptionsExactly(kind: StoreKind) async throws {
        // JMS 3.1 §3.4: JMSTimestamp is the send time, JMSExpiration = JMSTimestamp + time-to-live
        // (0 without one), JMSDeliveryTime = send time + delivery delay; priority 4 and PERSISTENT
        // by default. The consumer sees the same values as the sender, on every store.
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("exact-headers"))
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: queue)
        let before = WallClock.nowMillis()
        let plain = try await producer.send(.text("plain"))
        let after = WallClock.nowMillis()
        #expect((before...after).contains(plain.timestamp))
        #expect(plain.priority == 4 && plain.deliveryMode == .persistent)
        #expect(plain.expiration == 0 && plain.deliveryTime == plain.timestamp)
        producer.options = SendOptions(deliveryMode: .nonPersistent, priority: 2, timeToLive: .seconds(600))
        let byDefault = try await producer.send(.text("defaults"))
        #expect(byDefault.priority == 2 && byDefault.deliveryMode == .nonPersistent)
        #expect(byDefault.expiration == byDefault.timestamp + 600_000)
        let overridden = try await producer.send(
            .text("override"), options: SendOptions(priority: 9, timeToLive: .milliseconds(90_500), deliveryDelay: .milliseconds(20)))
        #expect(overridden.priority == 9 && overridden.deliveryMode == .persistent)
        #expect(overridden.expiration == overridden.timestamp + 90_500)
        #expect(overridden.deliveryTime == overridden.timestamp + 20)
        // Priorities and the delay decide the order; match by text.
        let received = Dictionary(uniqueKeysWithValues: try await session.createConsumer(for: queue).receive(3).map { ($0.text ?? "", $0) })
        #expect(received.keys.sorted() == ["defaults", "override", "plain"])
        for sent in [plain, byDefault, overridden] {
            let got = try #require(received[sent.text ?? ""])
            #expect(got.timestamp == sent.timestamp && got.expiration == sent.expiration && got.deliveryTime == sent.deliveryTime)
            #expect(got.priority == sent.priority && got.deliveryMode == sent.deliveryMode && got.messageID == sent.messageID)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aProducerWithoutDestinationNeedsOnePerSend(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let anonymous = try fixture.connection.createSession().createProducer()
        await expectError(.unsupportedOperation) { try await anonymous.send(.text("where?")) }
        let result = Mutex<[Result<Message, ConveyorError>]>([])
        anonymous.send(.text("where?")) { outcome in result.withLock { $0.append(outcome) } }
        #expect(await waitUntil { result.withLock { !$0.isEmpty } })
        let outcomes = result.withLock { $0 }
        #expect(outcomes.count == 1)
        if case .failure(let error) = outcomes.first { #expect(error.code == .unsupportedOperation) } else { Issue.record("expected a failure") }
    }

    @Test(arguments: StoreKind.allCases)
    func asyncSendAfterCloseCompletesOnceWithAnError(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let producer = try fixture.connection.createSession().createProducer(for: .queue(Queue("async-closed")))
        producer.close()
        let result = Mutex<[Result<Message, ConveyorError>]>([])
        producer.send(.text("late")) { outcome in result.withLock { $0.append(outcome) } }
        #expect(await waitUntil { result.withLock { !$0.isEmpty } })
        let outcomes = result.withLock { $0 }
        #expect(outcomes.count == 1)
        if case .failure(let error) = outcomes.first { #expect(error.code == .illegalState) } else { Issue.record("expected a failure") }
    }

    // MARK: Browsers

    @Test(arguments: StoreKind.allCases)
    func browserHonoursSelectorOrderAndIgnoresUncommittedAndDelayedSends(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("browse-rules")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        for index in 0..<6 {
            var message = Message.text("\(index)")
            try message.setProperty(Int32(index), forName: "n")
            try await producer.send(message)
        }
        try await producer.send(.text("delayed"), options: SendOptions(deliveryDelay: .seconds(30)))
        let transacted = try fixture.connection.createSession(.transacted)
        try await transacted.createProducer(for: .queue(queue)).send(.text("uncommitted"))
        #expect(try session.createBrowser(for: queue).messages().map(\.text) == ["0", "1", "2", "3", "4", "5"])
        #expect(try session.createBrowser(for: queue, selector: "n >= 3").messages().map(\.text) == ["3", "4", "5"])
        #expect(try await session.createConsumer(for: .queue(queue)).receive(6).count == 6, "browsing consumed nothing")
        try await transacted.rollback()
    }
}
