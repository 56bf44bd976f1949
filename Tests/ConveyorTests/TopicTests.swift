import Conveyor
import Testing

@Suite("Topics: publish/subscribe", .timeLimit(.minutes(1)))
struct TopicTests {
    @Test(arguments: StoreKind.allCases)
    func everySubscriberGetsEveryMessageOnce(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let prices = Destination.topic(Topic("prices"))
        let subscribers = try (0..<3).map { _ in try fixture.connection.createSession().createConsumer(for: prices) }
        let publisher = try fixture.connection.createSession().createProducer(for: prices)
        try await publisher.sendTexts(20)
        for subscriber in subscribers {
            let texts = try await subscriber.receive(20).map(\.text)
            #expect(texts == (0..<20).map { "\($0)" })
            #expect(try await subscriber.receiveNoWait() == nil, "no duplicates")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func messagesPublishedBeforeSubscribingAreNotDelivered(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let topic = Destination.topic(Topic("news"))
        let session = try fixture.connection.createSession()
        let publisher = try session.createProducer(for: topic)
        try await publisher.send(.text("before"))
        let subscriber = try session.createConsumer(for: topic)
        try await publisher.send(.text("after"))
        #expect(try await subscriber.receive(timeout: .seconds(1))?.text == "after")
        #expect(try await subscriber.receiveNoWait() == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func durableSubscriptionKeepsMessagesWhileAway(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "inventory")
        defer { fixture.close() }
        let orders = Topic("orders")
        let session = try fixture.connection.createSession()
        let subscriber = try await session.createDurableConsumer(for: orders, name: "stock")
        let publisher = try session.createProducer(for: .topic(orders))
        try await publisher.send(.text("while online"))
        #expect(try await subscriber.receive(timeout: .seconds(1))?.text == "while online")
        subscriber.close()
        try await publisher.sendTexts(3)
        let again = try await session.createDurableConsumer(for: orders, name: "stock")
        #expect(try await again.receive(3).map(\.text) == ["0", "1", "2"])
    }

    @Test(arguments: StoreKind.allCases)
    func durableSubscriptionNeedsAClientID(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        await expectError(.illegalState) { try await session.createDurableConsumer(for: Topic("t"), name: "s") }
    }

    @Test(arguments: StoreKind.allCases)
    func unsharedDurableSubscriptionAllowsOneConsumer(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "c")
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        _ = try await session.createDurableConsumer(for: Topic("t"), name: "s")
        await expectError(.illegalState) { try await session.createDurableConsumer(for: Topic("t"), name: "s") }
    }

    @Test(arguments: StoreKind.allCases)
    func unsubscribeWhileActiveIsIllegalAndAfterCloseDeletes(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "c")
        defer { fixture.close() }
        let topic = Topic("t")
        let session = try fixture.connection.createSession()
        let consumer = try await session.createDurableConsumer(for: topic, name: "s")
        await expectError(.illegalState) { try await fixture.connection.unsubscribe("s") }
        consumer.close()
        try await session.createProducer(for: .topic(topic)).send(.text("kept?"))
        try await fixture.connection.unsubscribe("s")
        await expectError(.invalidDestination) { try await fixture.connection.unsubscribe("s") }
        let fresh = try await session.createDurableConsumer(for: topic, name: "s")
        #expect(try await fresh.receiveNoWait() == nil, "a new subscription starts empty")
    }

    @Test(arguments: StoreKind.allCases)
    func changingAnInactiveDurableSubscriptionReplacesIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "c")
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let first = try await session.createDurableConsumer(for: Topic("a"), name: "s")
        first.close()
        try await session.createProducer(for: .topic(Topic("a"))).send(.text("old"))
        let replaced = try await session.createDurableConsumer(for: Topic("b"), name: "s")
        #expect(try await replaced.receiveNoWait() == nil, "the old subscription's messages are discarded")
        try await session.createProducer(for: .topic(Topic("b"))).send(.text("new"))
        #expect(try await replaced.receive(timeout: .seconds(1))?.text == "new")
    }

    @Test(arguments: StoreKind.allCases)
    func sharedSubscriptionConsumersCompete(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let topic = Topic("events")
        let received = Recorder<String>()
        var consumers: [MessageConsumer] = []
        for _ in 0..<2 {
            let consumer = try fixture.connection.createSession().createSharedConsumer(for: topic, name: "workers")
            try consumer.setMessageListener { received.append($0.text ?? "") }
            consumers.append(consumer)
        }
        let plain = try fixture.connection.createSession().createConsumer(for: .topic(topic))
        try await fixture.connection.createSession().createProducer(for: .topic(topic)).sendTexts(100)
        #expect(await received.waitForCount(100))
        #expect(Set(received.all).count == 100 && received.count == 100, "each message to one shared consumer")
        #expect(try await plain.receive(100).count == 100, "a separate subscription still gets every message")
        _ = consumers
    }

    @Test(arguments: StoreKind.allCases)
    func sharedDurableSubscriptionKeepsMessagesAndIsShared(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let topic = Topic("audit")
        let session = try fixture.connection.createSession()
        let first = try await session.createSharedDurableConsumer(for: topic, name: "archive")
        let second = try await session.createSharedDurableConsumer(for: topic, name: "archive")
        first.close()
        second.close()
        try await session.createProducer(for: .topic(topic)).sendTexts(4)
        let back = try await session.createSharedDurableConsumer(for: topic, name: "archive")
        #expect(try await back.receive(4).map(\.text) == ["0", "1", "2", "3"])
    }

    @Test(arguments: StoreKind.allCases)
    func noLocalSkipsOwnConnectionsMessages(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let chat = Destination.topic(Topic("chat"))
        let mine = try fixture.connection.createSession().createConsumer(for: chat, noLocal: true)
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        try other.start()
        try await fixture.connection.createSession().createProducer(for: chat).send(.text("from me"))
        try await other.createSession().createProducer(for: chat).send(.text("from other"))
        #expect(try await mine.receive(timeout: .seconds(1))?.text == "from other")
        #expect(try await mine.receiveNoWait() == nil)
        other.close()
    }

    @Test(arguments: StoreKind.allCases)
    func temporaryTopicIsUsableByItsConnectionAndGoesWithIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let connection = try ConnectionFactory(broker: fixture.broker).createConnection()
        try connection.start()
        let topic = try connection.createTemporaryTopic()
        #expect(topic.isTemporary)
        let session = try connection.createSession()
        let subscriber = try session.createConsumer(for: .topic(topic))
        try await session.createProducer(for: .topic(topic)).send(.text("temp"))
        #expect(try await subscriber.receive(timeout: .seconds(1))?.text == "temp")
        connection.close()
        let producer = try fixture.connection.createSession().createProducer()
        await expectError(.invalidDestination) { try await producer.send(.text("late"), to: .topic(topic)) }
    }

    @Test(arguments: StoreKind.allCases)
    func theBrokerListsDurableSubscriptionsAcrossARestart(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "lister")
        let session = try fixture.connection.createSession()
        let prices = Topic("list-prices")
        try await session.createDurableConsumer(for: prices, name: "audit", selector: "region = 'EU'", noLocal: true).close()
        try await session.createSharedDurableConsumer(for: Topic("list-orders"), name: "workers").close()
        var message = Message.text("eu")
        try message.setProperty("EU", forName: "region")
        // From another client: noLocal skips the subscriber's own publications.
        let publisher = try ConnectionFactory(broker: fixture.broker).createConnection()
        try await publisher.createSession().createProducer(for: .topic(prices)).send(message)
        let reopened = try fixture.reopen(clientID: "lister")
        defer { reopened.close() }
        let listed = reopened.broker.durableSubscriptions()
        #expect(listed.map(\.key) == [SubscriptionKey(clientID: "lister", name: "workers"), SubscriptionKey(clientID: "lister", name: "audit")])
        let audit = try #require(listed.last)
        #expect(audit.topic == prices && audit.selector == "region = 'EU'" && audit.noLocal && !audit.isShared)
        #expect(audit.statistics.depth == 1)
        #expect(listed.first?.isShared == true)
        try await reopened.connection.unsubscribe("audit")
        #expect(reopened.broker.durableSubscriptions().map(\.key.name) == ["workers"])
    }
}
