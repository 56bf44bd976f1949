import Conveyor
import Testing

@Suite("Queues: point-to-point", .timeLimit(.minutes(1)))
struct QueueTests {
    @Test(arguments: StoreKind.allCases)
    func sentMessageIsReceivedWithHeaders(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let orders = Queue("orders")
        let producer = try session.createProducer(for: .queue(orders))
        var message = Message.text("order #1")
        message.correlationID = "c-1"
        message.type = "order"
        try message.setProperty("EU", forName: "region")
        let sent = try await producer.send(message)
        #expect(sent.messageID != nil)
        #expect(sent.timestamp > 0)
        #expect(sent.destination == .queue(orders))
        #expect(sent.deliveryMode == .persistent)
        #expect(sent.priority == 4)
        #expect(sent.expiration == 0, "no time-to-live: never expires")
        #expect(sent.deliveryTime == sent.timestamp, "no delivery delay: deliverable at once")

        let consumer = try session.createConsumer(for: .queue(orders))
        let received = try #require(try await consumer.receive(timeout: .seconds(2)))
        #expect(received.text == "order #1")
        #expect(received.messageID == sent.messageID)
        #expect(received.correlationID == "c-1")
        #expect(received.type == "order")
        #expect(try received.property("region", as: String.self) == "EU")
        #expect(received.redelivered == false)
        #expect(received.deliveryCount == 1)
        #expect(try received.property("JMSXDeliveryCount", as: Int.self) == 1)
        #expect(Set(received.propertyNames) == ["region", "JMSXDeliveryCount"])
        #expect(received.timestamp == sent.timestamp && received.expiration == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func eachMessageGoesToExactlyOneOfCompetingConsumers(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("work"))
        let producerSession = try fixture.connection.createSession()
        let producer = try producerSession.createProducer(for: queue)
        let total = 600
        let received = Recorder<(consumer: Int, text: String)>()
        var consumers: [MessageConsumer] = []
        for index in 0..<3 {
            let session = try fixture.connection.createSession()
            let consumer = try session.createConsumer(for: queue)
            try consumer.setMessageListener { message in
                received.append((index, message.text ?? ""))
            }
            consumers.append(consumer)
        }
        try await producer.sendTexts(total, options: .nonPersistent)
        #expect(await received.waitForCount(total))
        let texts = received.all.map(\.text)
        #expect(Set(texts).count == total, "every message once")
        #expect(texts.count == total, "no message twice")
        let stats = try #require(fixture.broker.statistics(for: Queue("work")))
        #expect(stats.depth == 0)
        #expect(stats.dequeued == total)
        _ = consumers
    }

    @Test(arguments: StoreKind.allCases)
    func competingConsumersShareTheLoad(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("shared-load"))
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: queue)
        try await producer.sendTexts(100, options: .nonPersistent)
        // Two consumers that take turns: fair shares mean neither prefetches everything.
        let first = try fixture.connection.createSession().createConsumer(for: queue)
        let second = try fixture.connection.createSession().createConsumer(for: queue)
        var counts = [0, 0]
        for _ in 0..<50 {
            if try await first.receive(timeout: .seconds(1)) != nil { counts[0] += 1 }
            if try await second.receive(timeout: .seconds(1)) != nil { counts[1] += 1 }
        }
        #expect(counts[0] + counts[1] == 100)
        #expect(counts[0] > 0 && counts[1] > 0, "both consumers got work: \(counts)")
    }

    @Test(arguments: StoreKind.allCases)
    func oneProducersMessagesArriveInSendOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("ordered"))
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: queue)
        try await producer.sendTexts(500)
        let consumer = try session.createConsumer(for: queue)
        let texts = try await consumer.receive(500).map(\.text)
        #expect(texts == (0..<500).map { "\($0)" })
    }

    @Test(arguments: StoreKind.allCases)
    func closingAConsumerHandsBackItsPrefetchedMessages(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("prefetch"))
        let session = try fixture.connection.createSession()
        try await session.createProducer(for: queue).sendTexts(10)
        let greedy = try session.createConsumer(for: queue)
        #expect(try await greedy.receive(timeout: .seconds(1))?.text == "0")
        greedy.close()
        let next = try session.createConsumer(for: queue)
        let rest = try await next.receive(9)
        #expect(rest.map(\.text) == (1..<10).map { "\($0)" })
        #expect(rest.allSatisfy { !$0.redelivered }, "prefetched but undelivered messages are not redelivered")
    }

    @Test(arguments: StoreKind.allCases)
    func browserShowsWaitingMessagesWithoutConsuming(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("browse")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        try await producer.sendTexts(3)
        let browser = try session.createBrowser(for: queue)
        #expect(try browser.messages().map(\.text) == ["0", "1", "2"])
        #expect(try browser.messages().count == 3, "browsing twice sees the same messages")
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(3).count == 3)
        #expect(try browser.messages().isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func aClosedBrowserRefusesToBrowseAndLeavesTheQueueAsItWas(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("browse-close")
        let session = try fixture.connection.createSession()
        try await session.createProducer(for: .queue(queue)).sendTexts(2)
        let browser = try session.createBrowser(for: queue)
        #expect(try browser.messages().count == 2)
        browser.close()
        browser.close()
        #expect(throws: ConveyorError.self) { try browser.messages() }
        do {
            _ = try browser.messages()
        } catch {
            #expect(error.code == .illegalState)
            #expect(error.message.contains("queue browser"))
        }
        #expect(try session.createBrowser(for: queue).messages().map(\.text) == ["0", "1"], "another browser still sees them")
    }

    @Test(arguments: StoreKind.allCases)
    func receiveTimesOutAndNoWaitReturnsNil(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(Queue("empty")))
        #expect(try await consumer.receiveNoWait() == nil)
        let start = ContinuousClock.now
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test(arguments: StoreKind.allCases)
    func waitingReceiveGetsALaterMessage(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("later"))
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let waiting = Task { try await consumer.receive(timeout: .seconds(5)) }
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("hello"))
        #expect(try await waiting.value?.text == "hello")
    }

    @Test(arguments: StoreKind.allCases)
    func messagesStreamYieldsUntilTheConsumerCloses(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("stream"))
        let session = try fixture.connection.createSession()
        try await session.createProducer(for: queue).sendTexts(5)
        let consumer = try session.createConsumer(for: queue)
        var texts: [String] = []
        for try await message in consumer.messages {
            texts.append(message.text ?? "")
            if texts.count == 5 { consumer.close() }
        }
        #expect(texts == ["0", "1", "2", "3", "4"])
    }
}
