import Conveyor
import Testing

/// A text message `<group>-<index>` in message group `group`.
private func grouped(_ group: String, _ index: Int) throws -> Message {
    try Message.text("\(group)-\(index)").with("JMSXGroupID", group)
}

/// Receives without waiting from each consumer in turn until `count` messages arrived or no consumer
/// has any; returns (consumer index, text) pairs in arrival order.
private func drain(_ consumers: [MessageConsumer], count: Int) async throws -> [(Int, String)] {
    var received: [(Int, String)] = []
    var idleRounds = 0
    while received.count < count, idleRounds < 200 {
        var any = false
        for (index, consumer) in consumers.enumerated() {
            if let message = try await consumer.receiveNoWait() {
                received.append((index, message.text ?? ""))
                any = true
            }
        }
        idleRounds = any ? 0 : idleRounds + 1
        if !any { await Task.yield() }
    }
    return received
}

@Suite("Message groups", .timeLimit(.minutes(1)))
struct MessageGroupTests {
    @Test(arguments: StoreKind.allCases)
    func aGroupGoesToOneConsumerInOrderWhileGroupsSpread(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("groups"))
        let groups = ["g1", "g2", "g3", "g4"]
        let perGroup = 5
        let consumers = [
            try fixture.connection.createSession().createConsumer(for: queue),
            try fixture.connection.createSession().createConsumer(for: queue),
        ]
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        for group in groups {
            for index in 0..<perGroup { try await producer.send(try grouped(group, index)) }
        }
        let received = try await drain(consumers, count: groups.count * perGroup)
        #expect(received.count == groups.count * perGroup)
        var owners: [String: Set<Int>] = [:]
        for group in groups {
            let mine = received.filter { $0.1.hasPrefix("\(group)-") }
            #expect(mine.map(\.1) == (0..<perGroup).map { "\(group)-\($0)" }, "\(group) in order")
            owners[group] = Set(mine.map(\.0))
            #expect(owners[group]?.count == 1, "\(group) went to one consumer: \(mine)")
        }
        #expect(Set(owners.values.flatMap { $0 }).count == 2, "the groups are spread over both consumers: \(owners)")
    }

    @Test(arguments: StoreKind.allCases)
    func groupsSpreadOneMessageAtATimeWithAPrefetchOfOne(kind: StoreKind) async throws {
        var configuration = BrokerConfiguration()
        configuration.prefetch = 1
        let fixture = try Fixture(kind, configuration: configuration)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("groups-interleaved"))
        let consumers = [
            try fixture.connection.createSession().createConsumer(for: queue),
            try fixture.connection.createSession().createConsumer(for: queue),
        ]
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        for index in 0..<4 {
            for group in ["a", "b", "c", "d"] { try await producer.send(try grouped(group, index)) }
        }
        let received = try await drain(consumers, count: 16)
        #expect(received.count == 16)
        for group in ["a", "b", "c", "d"] {
            let mine = received.filter { $0.1.hasPrefix("\(group)-") }
            #expect(mine.map(\.1) == (0..<4).map { "\(group)-\($0)" })
            #expect(Set(mine.map(\.0)).count == 1, "\(group): \(mine)")
        }
        #expect(Set(received.map(\.0)).count == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func whenItsConsumerClosesTheGroupMovesToAnother(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("group-move"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        for index in 0..<3 { try await producer.send(try grouped("g", index)) }
        let first = try fixture.connection.createSession().createConsumer(for: queue)
        let second = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await first.receive(timeout: .seconds(1))?.text == "g-0")
        #expect(try await second.receive(timeout: .milliseconds(100)) == nil, "g belongs to the first consumer")
        try await producer.send(try grouped("g", 3))
        #expect(try await second.receive(timeout: .milliseconds(100)) == nil, "new messages of g too")
        first.close()
        let rest = try await second.receive(3, timeout: .seconds(1))
        #expect(rest.map(\.text) == ["g-1", "g-2", "g-3"], "the group moved, in order")
        try await producer.send(try grouped("g", 4))
        #expect(try await second.receive(timeout: .seconds(1))?.text == "g-4")
    }

    @Test(arguments: StoreKind.allCases)
    func theGroupOwnerIsWokenForItsGroupsNewMessages(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("group-wake"))
        let received = Recorder<(Int, String)>()
        for index in 0..<2 {
            let consumer = try fixture.connection.createSession().createConsumer(for: queue)
            try consumer.setMessageListener { message in received.append((index, message.text ?? "")) }
        }
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        // One message at a time: each arrives while both listeners wait for work.
        for index in 0..<5 {
            try await producer.send(try grouped("g", index))
            let arrived = await received.waitForCount(index + 1)
            #expect(arrived, "g-\(index) was delivered")
            if !arrived { break }
        }
        let all = received.all
        #expect(all.map(\.1) == (0..<5).map { "g-\($0)" })
        #expect(Set(all.map(\.0)).count == 1, "one consumer for the group: \(all)")
    }

    @Test(arguments: StoreKind.allCases)
    func messagesWithoutAGroupAreNotHeldBackByGroups(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("group-and-free"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(try grouped("g", 0))
        let owner = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await owner.receive(timeout: .seconds(1))?.text == "g-0")
        try await producer.send(try grouped("g", 1))
        try await producer.send(.text("free"))
        let other = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await other.receive(timeout: .seconds(1))?.text == "free", "skips the other consumer's group")
        #expect(try await owner.receive(timeout: .seconds(1))?.text == "g-1")
    }
}

@Suite("Exclusive consumers", .timeLimit(.minutes(1)))
struct ExclusiveConsumerTests {
    @Test(arguments: StoreKind.allCases)
    func anExclusiveConsumerGetsEverythingWhileOpen(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("exclusive"))
        let exclusive = try fixture.connection.createSession().createConsumer(for: queue, options: .exclusive)
        let plain = try fixture.connection.createSession().createConsumer(for: queue)
        let standby = try fixture.connection.createSession().createConsumer(for: queue, options: ConsumerOptions(exclusive: true))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.sendTexts(10)
        #expect(try await plain.receive(timeout: .milliseconds(100)) == nil)
        #expect(try await standby.receive(timeout: .milliseconds(100)) == nil)
        #expect(try await exclusive.receive(10).map(\.text) == (0..<10).map { "\($0)" })
        try await producer.sendTexts(3)
        #expect(try await plain.receiveNoWait() == nil)
        #expect(try await standby.receiveNoWait() == nil)
        #expect(try await exclusive.receive(3).map(\.text) == ["0", "1", "2"])
        #expect(fixture.broker.statistics(for: Queue("exclusive"))?.consumers == 3)
    }

    @Test(arguments: StoreKind.allCases)
    func theStandbyTakesOverInOrderWhenTheExclusiveConsumerCloses(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("failover"))
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.sendTexts(6)
        let active = try fixture.connection.createSession().createConsumer(for: queue, options: .exclusive)
        let standby = try fixture.connection.createSession().createConsumer(for: queue, options: .exclusive)
        let later = try fixture.connection.createSession().createConsumer(for: queue, options: .exclusive)
        #expect(try await active.receive(2).map(\.text) == ["0", "1"])
        let waiting = Task { try await standby.receive(timeout: .seconds(5)) }
        active.close()
        #expect(try await waiting.value?.text == "2", "the stand-by takes over where the active one stopped")
        #expect(try await later.receiveNoWait() == nil, "the stand-by is now the only receiver")
        #expect(try await standby.receive(2).map(\.text) == ["3", "4"])
        standby.close()
        #expect(try await later.receive(2, timeout: .milliseconds(300)).map(\.text) == ["5"])
    }

    @Test(arguments: StoreKind.allCases)
    func plainConsumersReceiveAgainOnceNoExclusiveConsumerIsLeft(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("exclusive-then-plain"))
        let exclusive = try fixture.connection.createSession().createConsumer(for: queue, options: .exclusive)
        let plain = try fixture.connection.createSession().createConsumer(for: queue)
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        try await producer.send(.text("first"))
        #expect(try await plain.receive(timeout: .milliseconds(100)) == nil)
        exclusive.close()
        #expect(try await plain.receive(timeout: .seconds(1))?.text == "first")
    }
}
