import Conveyor
import Testing

@Suite("Transacted sessions", .timeLimit(.minutes(1)))
struct TransactionTests {
    @Test(arguments: StoreKind.withCommitLog)
    func sendsAreInvisibleUntilCommit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("tx"))
        let transacted = try fixture.connection.createSession(.transacted)
        let producer = try transacted.createProducer(for: queue)
        try await producer.sendTexts(3)
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)
        try await transacted.commit()
        #expect(try await consumer.receive(3).map(\.text) == ["0", "1", "2"])
    }

    @Test(arguments: StoreKind.withCommitLog)
    func rollbackDiscardsSendsAndRedeliversReceives(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("tx-rollback"))
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2)
        let session = try fixture.connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: queue)
        let producer = try session.createProducer(for: .queue(Queue("tx-out")))
        let first = try await consumer.receive(2)
        #expect(first.map(\.deliveryCount) == [1, 1])
        try await producer.send(.text("discarded"))
        try await session.rollback()
        let again = try await consumer.receive(2)
        #expect(again.map(\.text) == ["0", "1"])
        #expect(again.allSatisfy { $0.redelivered && $0.deliveryCount == 2 })
        try await session.commit()
        let output = try fixture.connection.createSession().createConsumer(for: .queue(Queue("tx-out")))
        #expect(try await output.receive(timeout: .milliseconds(50)) == nil, "the rolled-back send never happened")
        #expect(try await consumer.receiveNoWait() == nil, "committed receives are gone")
    }

    @Test(arguments: StoreKind.withCommitLog)
    func commitMakesReceivesFinalAndSendsVisibleTogether(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let input = Destination.queue(Queue("in"))
        let output = Destination.queue(Queue("out"))
        try await fixture.connection.createSession().createProducer(for: input).send(.text("request"))
        let session = try fixture.connection.createSession(.transacted)
        let request = try #require(try await session.createConsumer(for: input).receive(timeout: .seconds(1)))
        try await session.createProducer(for: output).send(.text("handled \(request.text ?? "")"))
        try await session.commit()
        let reader = try fixture.connection.createSession()
        #expect(try await reader.createConsumer(for: output).receive(timeout: .seconds(1))?.text == "handled request")
        #expect(fixture.broker.statistics(for: Queue("in"))?.dequeued == 1)
        #expect(fixture.broker.statistics(for: Queue("in"))?.inFlight == 0)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func closingATransactedSessionRollsBack(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("tx-close"))
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("keep me"))
        let session = try fixture.connection.createSession(.transacted)
        #expect(try await session.createConsumer(for: queue).receive(timeout: .seconds(1)) != nil)
        try await session.createProducer(for: queue).send(.text("never sent"))
        session.close()
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let back = try await consumer.receive(2, timeout: .milliseconds(200))
        #expect(back.map(\.text) == ["keep me"])
        #expect(back.first?.redelivered == true)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func transactionCallsOutsideATransactedSessionAreIllegal(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession(.autoAcknowledge)
        await expectError(.illegalState) { try await session.commit() }
        await expectError(.illegalState) { try await session.rollback() }
        let transacted = try fixture.connection.createSession(.transacted)
        await expectError(.illegalState) { try await transacted.recover() }
    }

    @Test(arguments: StoreKind.withCommitLog)
    func transactedTopicPublishReachesSubscribersOnCommit(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "tx-topic")
        defer { fixture.close() }
        let topic = Topic("tx-topic")
        let durable = try await fixture.connection.createSession().createDurableConsumer(for: topic, name: "d")
        let plain = try fixture.connection.createSession().createConsumer(for: .topic(topic))
        let session = try fixture.connection.createSession(.transacted)
        try await session.createProducer(for: .topic(topic)).sendTexts(2)
        #expect(try await plain.receive(timeout: .milliseconds(50)) == nil)
        try await session.commit()
        #expect(try await durable.receive(2).map(\.text) == ["0", "1"])
        #expect(try await plain.receive(2).map(\.text) == ["0", "1"])
    }
}
