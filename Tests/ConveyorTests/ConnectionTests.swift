@testable import Conveyor
import Testing

@Suite("Connections, sessions and closed objects", .timeLimit(.minutes(1)))
struct ConnectionTests {
    @Test(arguments: StoreKind.allCases)
    func nothingIsDeliveredBeforeStartAndStopPauses(kind: StoreKind) async throws {
        let broker = try Broker(store: try StoreKind.Location(kind: kind).makeStore())
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("gated"))
        let session = try connection.createSession()
        try await session.createProducer(for: queue).sendTexts(2)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil, "not started: nothing delivered")
        let waiting = Task { try await consumer.receive(timeout: .seconds(5)) }
        try connection.start()
        #expect(try await waiting.value?.text == "0", "start wakes a waiting receive")
        try connection.stop()
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil, "stopped: nothing delivered")
        try connection.start()
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "1")
    }

    @Test(arguments: StoreKind.allCases)
    func listenerWaitsForStart(kind: StoreKind) async throws {
        let broker = try Broker(store: try StoreKind.Location(kind: kind).makeStore())
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("listener-gated"))
        let session = try connection.createSession()
        let received = Recorder<String>()
        try session.createConsumer(for: queue).setMessageListener { received.append($0.text ?? "") }
        try await session.createProducer(for: queue).send(.text("hi"))
        #expect(await received.waitForCount(1, timeout: .milliseconds(50)) == false)
        try connection.start()
        #expect(await received.waitForCount(1))
    }

    @Test(arguments: StoreKind.allCases)
    func closedObjectsRefuseWorkWithIllegalState(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("closed"))
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: queue)
        let consumer = try session.createConsumer(for: queue)
        producer.close()
        await expectError(.illegalState) { try await producer.send(.text("x")) }
        consumer.close()
        await expectError(.illegalState) { try await consumer.receive(timeout: .milliseconds(10)) }
        await expectError(.illegalState) { try consumer.setMessageListener { _ in } }
        session.close()
        #expect(session.isClosed)
        await expectError(.illegalState) { try session.createProducer(for: queue) }
        await expectError(.illegalState) { try session.createConsumer(for: queue) }
        fixture.connection.close()
        fixture.connection.close()  // closing twice is fine
        await expectError(.illegalState) { try fixture.connection.createSession() }
        await expectError(.illegalState) { try fixture.connection.start() }
        fixture.broker.close()
        await expectError(.illegalState) { try ConnectionFactory(broker: fixture.broker).createConnection() }
    }

    @Test(arguments: StoreKind.allCases)
    func closingTheConnectionClosesItsSessionsAndEndsWaitingReceives(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let consumer = try session.createConsumer(for: .queue(Queue("waiting")))
        let waiting = Task { try await consumer.receive() }
        #expect(await waitUntil { consumer.queue.isWaiting(consumer) })
        fixture.connection.close()
        #expect(try await waiting.value == nil)
        #expect(session.isClosed)
        #expect(consumer.isClosed)
    }

    @Test(arguments: StoreKind.allCases)
    func clientIDsAreUniqueAmongOpenConnections(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "billing")
        defer { fixture.close() }
        let factory = ConnectionFactory(broker: fixture.broker)
        await expectError(.invalidClientID) { try factory.createConnection(clientID: "billing") }
        await expectError(.invalidClientID) { try factory.createConnection(clientID: "") }
        fixture.connection.close()
        let again = try factory.createConnection(clientID: "billing")
        #expect(again.clientID == "billing")
    }

    @Test
    func aClientIDCanBeSetOnceRightAfterCreation() async throws {
        let broker = try Broker()
        defer { broker.close() }
        let factory = ConnectionFactory(broker: broker)
        let connection = try factory.createConnection()
        #expect(connection.clientID == nil)
        await expectError(.invalidClientID) { try connection.setClientID("") }
        try connection.setClientID("late")
        #expect(connection.clientID == "late")
        await expectError(.illegalState) { try connection.setClientID("again") }
        // The ID names durable subscriptions like one given at creation.
        let topic = Topic("late-topic")
        let session = try connection.createSession()
        let durable = try await session.createDurableConsumer(for: topic, name: "audit")
        durable.close()
        try await connection.unsubscribe("audit")
        // Taken while the connection is open, free again once it closes.
        let other = try factory.createConnection()
        await expectError(.invalidClientID) { try other.setClientID("late") }
        connection.close()
        try other.setClientID("late")
        #expect(other.clientID == "late")
    }

    @Test
    func aClientIDCannotBeSetOnceTheConnectionIsUsedOrClosed() async throws {
        let broker = try Broker()
        defer { broker.close() }
        let factory = ConnectionFactory(broker: broker)
        let given = try factory.createConnection(clientID: "given")
        await expectError(.illegalState) { try given.setClientID("other") }
        let withSession = try factory.createConnection()
        _ = try withSession.createSession()
        await expectError(.illegalState) { try withSession.setClientID("a") }
        let started = try factory.createConnection()
        try started.start()
        await expectError(.illegalState) { try started.setClientID("b") }
        let closed = try factory.createConnection()
        closed.close()
        await expectError(.illegalState) { try closed.setClientID("c") }
        #expect([withSession, started, closed].allSatisfy { $0.clientID == nil })
    }

    @Test(arguments: StoreKind.allCases)
    func invalidDestinationNamesAreRejected(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        await expectError(.invalidDestination) { try session.createProducer(for: .queue(Queue(""))) }
        await expectError(.invalidDestination) { try session.createConsumer(for: .topic(Topic(String(repeating: "x", count: 300)))) }
        let anonymous = try session.createProducer()
        // JMS MessageProducer.send(Message) on a producer without a destination: UnsupportedOperationException.
        await expectError(.unsupportedOperation) { try await anonymous.send(.text("where?")) }
    }

    @Test(arguments: StoreKind.allCases)
    func temporaryQueueServesRequestReplyAndBelongsToItsConnection(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let replies = try fixture.connection.createTemporaryQueue()
        #expect(replies.isTemporary)
        let other = try ConnectionFactory(broker: fixture.broker).createConnection()
        await expectError(.invalidDestination) { try other.createSession().createConsumer(for: .queue(replies)) }
        // A service on the other connection answers to replyTo with the request's ID as correlation ID.
        try other.start()
        let serviceSession = try other.createSession()
        let requests = try serviceSession.createConsumer(for: .queue(Queue("service")))
        let replier = try serviceSession.createProducer()
        let session = try fixture.connection.createSession()
        var request = Message.text("ping")
        request.replyTo = .queue(replies)
        let sent = try await session.createProducer(for: .queue(Queue("service"))).send(request)
        let received = try #require(try await requests.receive(timeout: .seconds(1)))
        var reply = Message.text("pong")
        reply.correlationID = received.messageID?.description
        try await replier.send(reply, to: try #require(received.replyTo))
        let answer = try #require(try await session.createConsumer(for: .queue(replies)).receive(timeout: .seconds(1)))
        #expect(answer.text == "pong")
        #expect(answer.correlationID == sent.messageID?.description)
        fixture.connection.close()
        await expectError(.invalidDestination) { try await replier.send(.text("late"), to: .queue(replies)) }
        other.close()
    }

    @Test(arguments: StoreKind.allCases)
    func asyncSendsCompleteInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("async-send"))
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: queue)
        let completed = Recorder<String>()
        for index in 0..<50 {
            producer.send(.text("\(index)")) { result in
                completed.append((try? result.get().text) ?? "failed")
            }
        }
        try await producer.send(.text("sync"))  // waits for the earlier asynchronous sends
        #expect(completed.count == 50)
        #expect(completed.all == (0..<50).map { "\($0)" })
        let received = try await session.createConsumer(for: queue).receive(51).map(\.text)
        #expect(received == (0..<50).map { "\($0)" } + ["sync"])
    }

    @Test(arguments: StoreKind.allCases)
    func invalidSendOptionsAreRejected(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let producer = try fixture.connection.createSession().createProducer(for: .queue(Queue("opts")))
        let error = await expectError(.messageFormat) { try await producer.send(.text("x"), options: SendOptions(priority: 12)) }
        #expect(error?.message.contains("12") == true)
        await expectError(.messageFormat) { try await producer.send(.text("x"), options: SendOptions(priority: -1)) }
        await expectError(.messageFormat) {
            try await producer.send(.text("x"), options: SendOptions(timeToLive: .milliseconds(-1)))
        }
        await expectError(.messageFormat) {
            try await producer.send(.text("x"), options: SendOptions(deliveryDelay: .milliseconds(-1)))
        }
        for priority in [0, 9] {
            #expect(try await producer.send(.text("x"), options: SendOptions(priority: priority)).priority == priority)
        }
        let ttlZero = try await producer.send(.text("x"), options: SendOptions(timeToLive: .zero))
        #expect(ttlZero.expiration == 0, "a zero time-to-live means never expires, as in JMS")
    }

    @Test(arguments: StoreKind.allCases)
    func aMapEntryWithAnEmptyNameIsRejectedOnSend(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("map-names")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        let error = await expectError(.messageFormat) { try await producer.send(.map(["": .int32(1), "ok": .int32(2)])) }
        #expect(error?.message.contains("empty name") == true)
        try await producer.send(.map(["ok": .int32(2)]))
        let received = try await session.createConsumer(for: .queue(queue)).receive(2, timeout: .milliseconds(200))
        #expect(received.map(\.map) == [["ok": .int32(2)]], "only the valid map was sent")
    }
}

@Suite("Producers", .timeLimit(.minutes(1)))
struct ProducerTests {
    @Test(arguments: StoreKind.allCases)
    func aProducerWithADestinationCannotNameOnePerSend(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(Queue("own")))
        let error = await expectError(.unsupportedOperation) { try await producer.send(.text("x"), to: .queue(Queue("other"))) }
        #expect(error?.message.contains("queue://own") == true)
        // JMS: not even the producer's own destination.
        await expectError(.unsupportedOperation) { try await producer.send(.text("same"), to: .queue(Queue("own"))) }
        let anonymous = try session.createProducer()
        try await anonymous.send(.text("a"), to: .queue(Queue("other")))
        let consumer = try session.createConsumer(for: .queue(Queue("other")))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "a")
    }
}
