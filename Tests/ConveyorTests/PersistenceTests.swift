import Conveyor
import Testing

@Suite("Persistence across broker restarts", .timeLimit(.minutes(1)))
struct PersistenceTests {
    @Test(arguments: StoreKind.withCommitLog)
    func persistentMessagesSurviveARestartAndNonPersistentOnesDoNot(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let queue = Destination.queue(Queue("durable-queue"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("kept"))
        try await producer.send(.text("lost"), options: .nonPersistent)
        try await producer.send(.text("kept too"), options: SendOptions(priority: 7))
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let consumer = try reopened.connection.createSession().createConsumer(for: queue)
        let texts = try await consumer.receive(3, timeout: .milliseconds(200)).map(\.text)
        #expect(texts == ["kept too", "kept"], "priority 7 first, the non-persistent message is gone")
    }

    @Test(arguments: StoreKind.withCommitLog)
    func deliveredButUnacknowledgedMessagesComeBackRedelivered(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let queue = Destination.queue(Queue("in-flight"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        try await session.createProducer(for: queue).sendTexts(2)
        let consumer = try session.createConsumer(for: queue)
        let first = try await consumer.receive(2)
        #expect(first.allSatisfy { !$0.redelivered })
        let reopened = try fixture.reopen()  // closed without acknowledging
        defer { reopened.close() }
        let again = try await reopened.connection.createSession().createConsumer(for: queue).receive(2)
        #expect(again.map(\.text) == ["0", "1"])
        #expect(again.allSatisfy { $0.redelivered && $0.deliveryCount == 2 })
    }

    @Test(arguments: StoreKind.withCommitLog)
    func acknowledgedAndCommittedMessagesStayGone(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let queue = Destination.queue(Queue("acked"))
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(4)
        let auto = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await auto.receive(timeout: .seconds(1))?.text == "0")
        auto.close()
        let transacted = try fixture.connection.createSession(.transacted)
        #expect(try await transacted.createConsumer(for: queue).receive(timeout: .seconds(1))?.text == "1")
        try await transacted.commit()
        transacted.close()
        let reopened = try fixture.reopen()
        defer { reopened.close() }
        let rest = try await reopened.connection.createSession().createConsumer(for: queue).receive(3, timeout: .milliseconds(200))
        #expect(rest.map(\.text) == ["2", "3"])
    }

    @Test(arguments: StoreKind.withCommitLog)
    func durableSubscriptionsAndTheirMessagesSurviveARestart(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "analytics")
        let topic = Topic("orders")
        let session = try fixture.connection.createSession()
        let subscriber = try await session.createDurableConsumer(for: topic, name: "reports", selector: "total > 100")
        subscriber.close()
        let publisher = try session.createProducer(for: .topic(topic))
        try await publisher.send(try Message.text("small").with("total", 5))
        try await publisher.send(try Message.text("big").with("total", 500))
        let reopened = try fixture.reopen(clientID: "analytics")
        defer { reopened.close() }
        let back = try await reopened.connection.createSession().createDurableConsumer(for: topic, name: "reports", selector: "total > 100")
        #expect(try await back.receive(2, timeout: .milliseconds(200)).map(\.text) == ["big"])
    }

    @Test(arguments: StoreKind.withCommitLog)
    func oneBrokerPerStoreAtATime(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let broker = try Broker(store: try location.makeStore())
        defer { broker.close() }
        await expectError(.storage) { try Broker(store: try location.makeStore()) }
    }
}
