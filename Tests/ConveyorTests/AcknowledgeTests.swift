import Conveyor
import Synchronization
import Testing

@Suite("Acknowledge modes and redelivery", .timeLimit(.minutes(1)))
struct AcknowledgeTests {
    @Test(arguments: StoreKind.allCases)
    func autoAcknowledgeRemovesTheMessageWhenReceiveReturns(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("auto")
        let session = try fixture.connection.createSession(.autoAcknowledge)
        try await session.createProducer(for: .queue(queue)).send(.text("once"))
        let consumer = try session.createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "once")
        session.close()
        let again = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await again.receiveNoWait() == nil, "acknowledged messages do not come back")
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.inFlight == 0 && stats.dequeued == 1)
    }

    @Test(arguments: StoreKind.allCases, [SessionMode.autoAcknowledge, .dupsOKAcknowledge])
    func listenerThatThrowsGetsTheMessageAgainFlaggedRedelivered(kind: StoreKind, mode: SessionMode) async throws {
        struct Failure: Error {}
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("flaky"))
        let session = try fixture.connection.createSession(mode)
        let seen = Recorder<Message>()
        let consumer = try session.createConsumer(for: queue)
        try consumer.setMessageListener { message in
            seen.append(message)
            if seen.count == 1 { throw Failure() }
        }
        try await fixture.connection.createSession().createProducer(for: queue).send(.text("job"))
        #expect(await seen.waitForCount(2))
        let attempts = seen.all
        #expect(attempts[0].redelivered == false && attempts[0].deliveryCount == 1)
        #expect(attempts[1].redelivered == true && attempts[1].deliveryCount == 2)
        #expect(attempts[1].messageID == attempts[0].messageID)
        #expect(await waitUntil { fixture.broker.statistics(for: Queue("flaky"))?.dequeued == 1 })
    }

    @Test(arguments: StoreKind.allCases)
    func clientAcknowledgeAcknowledgesEverythingConsumedInTheSession(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("client")
        let session = try fixture.connection.createSession(.clientAcknowledge)
        try await session.createProducer(for: .queue(queue)).sendTexts(3)
        let consumer = try session.createConsumer(for: .queue(queue))
        let messages = try await consumer.receive(3)
        #expect(fixture.broker.statistics(for: queue)?.inFlight == 3)
        try await messages[1].acknowledge()  // acknowledges all three, not just the second
        #expect(fixture.broker.statistics(for: queue)?.inFlight == 0)
        try await session.recover()
        #expect(try await consumer.receiveNoWait() == nil, "nothing left to redeliver")
    }

    @Test(arguments: StoreKind.allCases)
    func recoverRedeliversUnacknowledgedMessagesInOrder(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("recover"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        try await session.createProducer(for: queue).sendTexts(5)
        let consumer = try session.createConsumer(for: queue)
        let first = try await consumer.receive(2)
        try await first[1].acknowledge()
        let unacked = try await consumer.receive(2)
        #expect(unacked.map(\.text) == ["2", "3"])
        try await session.recover()
        let again = try await consumer.receive(3)
        #expect(again.map(\.text) == ["2", "3", "4"])
        #expect(again[0].redelivered && again[0].deliveryCount == 2)
        #expect(again[1].redelivered && again[1].deliveryCount == 2)
        #expect(!again[2].redelivered && again[2].deliveryCount == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func closingAClientAckSessionReturnsUnacknowledgedMessages(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("unacked"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        try await session.createProducer(for: queue).send(.text("important"))
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1)) != nil)
        session.close()
        let other = try fixture.connection.createSession().createConsumer(for: queue)
        let again = try #require(try await other.receive(timeout: .seconds(1)))
        #expect(again.text == "important" && again.redelivered)
    }

    @Test(arguments: StoreKind.allCases)
    func acknowledgeOnAClosedSessionIsIllegal(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("late-ack"))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        try await session.createProducer(for: queue).send(.text("x"))
        let message = try #require(try await session.createConsumer(for: queue).receive(timeout: .seconds(1)))
        session.close()
        await expectError(.illegalState) { try await message.acknowledge() }
    }

    @Test(arguments: StoreKind.allCases)
    func listenersOfOneSessionRunOneAtATime(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let running = Atomic<Int>(0)
        let maximum = Atomic<Int>(0)
        let done = Recorder<Int>()
        for index in 0..<3 {
            let consumer = try session.createConsumer(for: .queue(Queue("serial-\(index)")))
            try consumer.setMessageListener { _ in
                let now = running.add(1, ordering: .relaxed).newValue
                maximum.max(now, ordering: .relaxed)
                await Task.yield()
                running.subtract(1, ordering: .relaxed)
                done.append(index)
            }
        }
        let producerSession = try fixture.connection.createSession()
        for index in 0..<3 {
            try await producerSession.createProducer(for: .queue(Queue("serial-\(index)"))).sendTexts(30, options: .nonPersistent)
        }
        #expect(await done.waitForCount(90))
        #expect(maximum.load(ordering: .relaxed) == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func listenersOfDifferentSessionsRunConcurrently(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        // Each listener waits until the other one has started: this finishes only if they overlap.
        let started = Atomic<Int>(0)
        let finished = Recorder<Int>()
        for index in 0..<2 {
            let consumer = try fixture.connection.createSession().createConsumer(for: .queue(Queue("parallel-\(index)")))
            try consumer.setMessageListener { _ in
                started.add(1, ordering: .relaxed)
                let overlapped = await waitUntil(timeout: .seconds(5)) { started.load(ordering: .relaxed) >= 2 }
                finished.append(overlapped ? 1 : 0)
            }
        }
        let session = try fixture.connection.createSession()
        for index in 0..<2 {
            try await session.createProducer(for: .queue(Queue("parallel-\(index)"))).send(.text("go"))
        }
        #expect(await finished.waitForCount(2, timeout: .seconds(10)))
        #expect(finished.all == [1, 1])
    }
}
