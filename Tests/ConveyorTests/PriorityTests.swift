import Conveyor
import Testing

@Suite("Message priorities", .timeLimit(.minutes(1)))
struct PriorityTests {
    @Test(arguments: StoreKind.allCases)
    func higherPrioritiesComeFirstAndEachPriorityIsFIFO(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("priorities"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        let priorities = [0, 9, 4, 4, 9, 1, 0, 5, 4, 9, 2]
        for (index, priority) in priorities.enumerated() {
            try await producer.send(.text("\(index)"), options: SendOptions(priority: priority))
        }
        let expected = priorities.enumerated()
            .sorted { $0.element != $1.element ? $0.element > $1.element : $0.offset < $1.offset }
            .map { "\($0.offset)" }
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let received = try await consumer.receive(priorities.count)
        #expect(received.map(\.text) == expected)
        #expect(received.map(\.priority) == priorities.sorted(by: >))
    }

    @Test(arguments: StoreKind.allCases)
    func allTenPrioritiesAreDistinct(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("ten-priorities"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        for priority in 0...9 {
            let sent = try await producer.send(.text("p\(priority)"), options: SendOptions(priority: priority))
            #expect(sent.priority == priority)
        }
        let received = try await fixture.connection.createSession().createConsumer(for: queue).receive(10)
        #expect(received.map(\.priority) == Array((0...9).reversed()))
    }

    @Test(arguments: StoreKind.allCases)
    func theProducersDefaultPriorityApplies(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("default-priority"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("normal"))
        producer.options = SendOptions(priority: 8)
        try await producer.send(.text("urgent"))
        let received = try await fixture.connection.createSession().createConsumer(for: queue).receive(2)
        #expect(received.map(\.text) == ["urgent", "normal"])
        #expect(received.map(\.priority) == [8, 4])
    }

    @Test(arguments: StoreKind.allCases, [-1, 10, 100, Int.min])
    func anInvalidPriorityIsRejectedAndNothingIsSent(kind: StoreKind, priority: Int) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("bad-priority")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        await expectError(.messageFormat) { try await producer.send(.text("x"), options: SendOptions(priority: priority)) }
        producer.options = SendOptions(priority: priority)
        await expectError(.messageFormat) { try await producer.send(.text("y")) }
        let consumer = try fixture.connection.createSession().createConsumer(for: .queue(queue))
        #expect(try await consumer.receive(timeout: .milliseconds(50)) == nil)
        #expect(fixture.broker.statistics(for: queue)?.enqueued == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func aHigherPriorityMessageOvertakesWaitingOnes(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("overtake"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.sendTexts(3)
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(timeout: .seconds(1))?.text == "0")
        consumer.close()
        try await producer.send(.text("urgent"), options: SendOptions(priority: 9))
        let next = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await next.receive(3).map(\.text) == ["urgent", "1", "2"])
    }

    @Test(arguments: StoreKind.allCases)
    func redeliveredMessagesKeepTheirPlaceInTheirPriority(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("priority-recover"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("low-a"), options: SendOptions(priority: 2))
        try await producer.send(.text("high"), options: SendOptions(priority: 7))
        try await producer.send(.text("low-b"), options: SendOptions(priority: 2))
        let session = try fixture.connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: queue)
        #expect(try await consumer.receive(2).map(\.text) == ["high", "low-a"])
        try await session.recover()
        let again = try await consumer.receive(3)
        #expect(again.map(\.text) == ["high", "low-a", "low-b"])
        #expect(again.map(\.redelivered) == [true, true, false])
    }

    @Test(arguments: StoreKind.allCases)
    func durableSubscriptionsDeliverByPriorityToo(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "prio")
        defer { fixture.close() }
        let topic = Topic("prio-topic")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "d").close()
        let producer = try session.createProducer(for: .topic(topic))
        for (index, priority) in [1, 6, 3, 6].enumerated() {
            try await producer.send(.text("\(index)"), options: SendOptions(priority: priority))
        }
        let back = try await session.createDurableConsumer(for: topic, name: "d")
        #expect(try await back.receive(4).map(\.text) == ["1", "3", "2", "0"])
    }
}
