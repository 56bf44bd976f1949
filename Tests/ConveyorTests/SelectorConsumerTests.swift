import Conveyor
import Testing

/// A text message with a `color` property.
private func colored(_ text: String, _ color: String) throws -> Message {
    try Message.text(text).with("color", color)
}

/// The statistics of the subscriptions of `topic` (their names start with `topic://<name>#`).
private func subscriptionStatistics(_ broker: Broker, _ topic: Topic) -> [DestinationStatistics] {
    broker.statistics().filter { $0.name.hasPrefix("\(topic)#") }
}

@Suite("Selectors on consumers, browsers and subscriptions", .timeLimit(.minutes(1)))
struct SelectorConsumerTests {
    @Test(arguments: StoreKind.allCases)
    func queueConsumerWithASelectorSkipsNonMatchingMessagesWhichStayForOthers(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("paint")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        for (index, color) in ["red", "blue", "red", "blue", "green"].enumerated() {
            try await producer.send(try colored("\(color)-\(index)", color))
        }
        let reds = try session.createConsumer(for: .queue(queue), selector: "color = 'red'")
        #expect(reds.messageSelector == "color = 'red'")
        #expect(try await reds.receive(3, timeout: .milliseconds(200)).map(\.text) == ["red-0", "red-2"])
        #expect(try await reds.receiveNoWait() == nil)

        // The skipped messages are still in the queue, in order, for browsers and other consumers.
        let all = try session.createBrowser(for: queue)
        #expect(try all.messages().map(\.text) == ["blue-1", "blue-3", "green-4"])
        let blueBrowser = try session.createBrowser(for: queue, selector: "color = 'blue'")
        #expect(blueBrowser.messageSelector == "color = 'blue'")
        #expect(try blueBrowser.messages().map(\.text) == ["blue-1", "blue-3"])
        #expect(try session.createBrowser(for: queue, selector: "color = 'red'").messages().isEmpty)
        let stats = try #require(fixture.broker.statistics(for: queue))
        #expect(stats.depth == 3 && stats.dequeued == 2 && stats.enqueued == 5)

        let notRed = try fixture.connection.createSession().createConsumer(for: .queue(queue), selector: "color <> 'red'")
        #expect(try await notRed.receive(3).map(\.text) == ["blue-1", "blue-3", "green-4"])
    }

    @Test(arguments: StoreKind.allCases)
    func aWaitingSelectorConsumerIsWokenByAMatchingMessageOnly(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("wake-by-selector")
        let reds = try fixture.connection.createSession().createConsumer(for: .queue(queue), selector: "color = 'red'")
        let waiting = Task { try await reds.receive(timeout: .seconds(5)) }
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        try await producer.send(try colored("blue", "blue"))
        try await producer.send(try colored("red", "red"))
        #expect(try await waiting.value?.text == "red")
        let browser = try fixture.connection.createSession().createBrowser(for: queue)
        #expect(try browser.messages().map(\.text) == ["blue"], "the non-matching message stays")
    }

    @Test(arguments: StoreKind.allCases)
    func aSubscriptionWithASelectorNeverStoresNonMatchingMessages(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "painter")
        defer { fixture.close() }
        let topic = Topic("colors")
        let session = try fixture.connection.createSession()
        let plain = try session.createConsumer(for: .topic(topic), selector: "color = 'red'")
        let durable = try await session.createDurableConsumer(for: topic, name: "reds", selector: "color = 'red'")
        durable.close()
        let producer = try session.createProducer(for: .topic(topic))
        for (index, color) in ["red", "blue", "red", "blue"].enumerated() {
            try await producer.send(try colored("\(color)-\(index)", color))
        }
        let stats = subscriptionStatistics(fixture.broker, topic)
        #expect(stats.count == 2)
        for subscription in stats {
            #expect(subscription.enqueued == 2, "\(subscription.name) stored only the matching messages")
            #expect(subscription.depth == 2, "\(subscription.name)")
        }
        let durableStats = try #require(stats.first { $0.name == "topic://colors#painter:reds" })
        #expect(durableStats.consumers == 0)

        #expect(try await plain.receive(3, timeout: .milliseconds(200)).map(\.text) == ["red-0", "red-2"])
        let back = try await session.createDurableConsumer(for: topic, name: "reds", selector: "color = 'red'")
        #expect(try await back.receive(3, timeout: .milliseconds(200)).map(\.text) == ["red-0", "red-2"])
        #expect(back.messageSelector == "color = 'red'")
    }

    @Test(arguments: StoreKind.allCases, ["", " ", " \t\n "])
    func anEmptyOrBlankSelectorIsTheSameAsNone(kind: StoreKind, blank: String) async throws {
        let fixture = try Fixture(kind, clientID: "blank")
        defer { fixture.close() }
        let queue = Queue("blank")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(queue))
        try await producer.send(.text("no properties"))
        try await producer.send(try colored("colored", "red"))

        let browser = try session.createBrowser(for: queue, selector: blank)
        #expect(browser.messageSelector == nil)
        #expect(try browser.messages().count == 2)
        let consumer = try session.createConsumer(for: .queue(queue), selector: blank)
        #expect(consumer.messageSelector == nil)
        #expect(try await consumer.receive(2).map(\.text) == ["no properties", "colored"])

        // A durable subscription opened without a selector and reopened with a blank one is the same
        // subscription: its messages are kept, not discarded as on a change of selector.
        let topic = Topic("blank-topic")
        try await session.createDurableConsumer(for: topic, name: "sub").close()
        try await session.createProducer(for: .topic(topic)).send(.text("kept"))
        let reopened = try await session.createDurableConsumer(for: topic, name: "sub", selector: blank)
        #expect(reopened.messageSelector == nil)
        #expect(try await reopened.receive(timeout: .seconds(1))?.text == "kept")
    }

    @Test(arguments: StoreKind.allCases, ["color = ", "color = 'red", "color IN ()", "AND x = 1", "x BETWEEN 1", "(a = 1", "a LIKE 5"])
    func anInvalidSelectorIsRejectedWhenTheConsumerOrBrowserIsCreated(kind: StoreKind, selector: String) async throws {
        let fixture = try Fixture(kind, clientID: "invalid")
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let queue = Queue("invalid-selector")
        let topic = Topic("invalid-selector")
        var errors: [ConveyorError?] = []
        errors.append(await expectError(.invalidSelector) { try session.createConsumer(for: .queue(queue), selector: selector) })
        errors.append(await expectError(.invalidSelector) { try session.createConsumer(for: .topic(topic), selector: selector) })
        errors.append(await expectError(.invalidSelector) { try session.createBrowser(for: queue, selector: selector) })
        errors.append(await expectError(.invalidSelector) {
            try await session.createDurableConsumer(for: topic, name: "bad", selector: selector)
        })
        errors.append(await expectError(.invalidSelector) { try session.createSharedConsumer(for: topic, name: "bad-shared", selector: selector) })
        errors.append(await expectError(.invalidSelector) {
            try await session.createSharedDurableConsumer(for: topic, name: "bad-shared-durable", selector: selector)
        })
        for error in errors {
            let message = error?.message ?? ""
            #expect(message.contains("position"), "names the position: \(message)")
            #expect(message.contains(selector), "quotes the selector: \(message)")
        }
        // Nothing was created by the failed calls.
        #expect(subscriptionStatistics(fixture.broker, topic).isEmpty)
        await expectError(.invalidDestination) { try await session.unsubscribe("bad") }
        #expect(fixture.broker.statistics(for: queue)?.consumers ?? 0 == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func theInvalidSelectorErrorNamesThePositionAndWhatWasExpected(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        // "a = 1 AND" stops too early: the position is one past the end (10).
        let error = await expectError(.invalidSelector) { try session.createConsumer(for: .queue(Queue("q")), selector: "a = 1 AND") }
        #expect(error?.message.contains("position 10") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("expected") == true, "\(error?.message ?? "")")
        // "a = = 1": the second '=' at position 5 is where a value was expected.
        let other = await expectError(.invalidSelector) { try session.createBrowser(for: Queue("q"), selector: "a = = 1") }
        #expect(other?.message.contains("position 5") == true, "\(other?.message ?? "")")
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningAnInactiveDurableSubscriptionWithAnotherSelectorReplacesIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "swap")
        let topic = Topic("swap")
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .topic(topic))

        // Same selector: the subscription is resumed with its messages.
        try await session.createDurableConsumer(for: topic, name: "s", selector: "color = 'red'").close()
        try await producer.send(try colored("red-kept", "red"))
        let same = try await session.createDurableConsumer(for: topic, name: "s", selector: "color = 'red'")
        #expect(try await same.receive(timeout: .seconds(1))?.text == "red-kept")
        same.close()

        // Another selector: the old subscription and its messages are gone.
        try await producer.send(try colored("red-old", "red"))
        let blues = try await session.createDurableConsumer(for: topic, name: "s", selector: "color = 'blue'")
        #expect(blues.messageSelector == "color = 'blue'")
        #expect(try await blues.receiveNoWait() == nil, "the old subscription's messages are discarded")
        try await producer.send(try colored("red-new", "red"))
        try await producer.send(try colored("blue-new", "blue"))
        blues.close()
        let stats = try #require(subscriptionStatistics(fixture.broker, topic).first)
        #expect(stats.depth == 1 && stats.enqueued == 1, "only the new selector's message is stored")

        // The replacement is stored too: after a restart only the new subscription's message is there.
        let reopened = try fixture.reopen(clientID: "swap")
        defer { reopened.close() }
        let back = try await reopened.connection.createSession().createDurableConsumer(for: topic, name: "s", selector: "color = 'blue'")
        #expect(try await back.receive(3, timeout: .milliseconds(200)).map(\.text) == ["blue-new"])
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningAnInactiveDurableSubscriptionWithAnotherNoLocalReplacesIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "local")
        defer { fixture.close() }
        let topic = Topic("local")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "s", noLocal: false).close()
        try await session.createProducer(for: .topic(topic)).send(.text("old"))
        let noLocal = try await session.createDurableConsumer(for: topic, name: "s", noLocal: true)
        #expect(try await noLocal.receiveNoWait() == nil, "changing noLocal discards the old messages")

        try await session.createProducer(for: .topic(topic)).send(.text("mine"))
        let other = try ConnectionFactory(broker: fixture.broker).createConnection(clientID: "someone-else")
        defer { other.close() }
        try await other.createSession().createProducer(for: .topic(topic)).send(.text("theirs"))
        #expect(try await noLocal.receive(2, timeout: .milliseconds(300)).map(\.text) == ["theirs"])
    }

    @Test(arguments: StoreKind.allCases)
    func aSelectorConsumerGetsTheHighestPriorityMatchingMessageFirst(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("priority-selector")
        let producer = try fixture.connection.createSession().createProducer(for: .queue(queue))
        let sends: [(String, String, Int)] = [
            ("red-p1", "red", 1), ("blue-p9", "blue", 9), ("red-p5a", "red", 5), ("red-p5b", "red", 5),
            ("blue-p7", "blue", 7), ("red-p8", "red", 8), ("red-p0", "red", 0),
        ]
        for (text, color, priority) in sends {
            try await producer.send(try colored(text, color), options: SendOptions(priority: priority))
        }
        let session = try fixture.connection.createSession()
        let reds = try session.createConsumer(for: .queue(queue), selector: "color = 'red'")
        #expect(try await reds.receive(6, timeout: .milliseconds(200)).map(\.text) == ["red-p8", "red-p5a", "red-p5b", "red-p1", "red-p0"])
        let urgent = try session.createConsumer(for: .queue(queue), selector: "JMSPriority >= 7")
        #expect(try await urgent.receive(3, timeout: .milliseconds(200)).map(\.text) == ["blue-p9", "blue-p7"])
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningADurableSubscriptionWithAnInvalidSelectorLeavesItAlone(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "careful")
        defer { fixture.close() }
        let topic = Topic("careful")
        let session = try fixture.connection.createSession()
        try await session.createDurableConsumer(for: topic, name: "s", selector: "color = 'red'").close()
        try await session.createProducer(for: .topic(topic)).send(try colored("kept", "red"))
        await expectError(.invalidSelector) { try await session.createDurableConsumer(for: topic, name: "s", selector: "color = ") }
        let back = try await session.createDurableConsumer(for: topic, name: "s", selector: "color = 'red'")
        #expect(try await back.receive(timeout: .seconds(1))?.text == "kept")
    }

    @Test(arguments: StoreKind.allCases)
    func jmsxDeliveryCountSelectsByTheCountOfTheComingDelivery(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Queue("delivery-count-selector")
        try await fixture.connection.createSession().createProducer(for: .queue(queue)).sendTexts(2)

        let firstBrowser = try fixture.connection.createSession().createBrowser(for: queue, selector: "JMSXDeliveryCount = 1")
        #expect(try firstBrowser.messages().map(\.text) == ["0", "1"], "a browser sees what a consumer would get")
        let session = try fixture.connection.createSession(.transacted)
        let firsts = try session.createConsumer(for: .queue(queue), selector: "JMSXDeliveryCount = 1")
        let first = try await firsts.receive(2, timeout: .seconds(1))
        #expect(first.map(\.text) == ["0", "1"])
        #expect(first.allSatisfy { $0.property("JMSXDeliveryCount") == .int32(1) })
        firsts.close()
        try await session.rollback()

        let other = try fixture.connection.createSession()
        #expect(try await other.createConsumer(for: .queue(queue), selector: "JMSXDeliveryCount = 1").receive(timeout: .milliseconds(100)) == nil)
        #expect(try other.createBrowser(for: queue, selector: "JMSXDeliveryCount = 2").messages().map(\.text) == ["0", "1"])
        let redeliveries = try other.createConsumer(for: .queue(queue), selector: "JMSXDeliveryCount > 1 AND JMSRedelivered IS NULL")
        let again = try await redeliveries.receive(2, timeout: .seconds(1))
        #expect(again.map(\.text) == ["0", "1"])
        #expect(again.allSatisfy { $0.redelivered && $0.deliveryCount == 2 })
    }

    @Test(arguments: StoreKind.allCases)
    func aTopicSubscriberSeesJMSXDeliveryCountOfOne(kind: StoreKind) async throws {
        let fixture = try Fixture(kind, clientID: "counting")
        defer { fixture.close() }
        let topic = Topic("delivery-count-topic")
        let session = try fixture.connection.createSession()
        let plain = try session.createConsumer(for: .topic(topic), selector: "JMSXDeliveryCount = 1")
        let durable = try await session.createDurableConsumer(for: topic, name: "d", selector: "JMSXDeliveryCount = 1")
        let never = try session.createConsumer(for: .topic(topic), selector: "JMSXDeliveryCount <> 1 OR JMSXDeliveryCount IS NULL")
        try await session.createProducer(for: .topic(topic)).send(.text("news"))
        #expect(try await plain.receive(timeout: .seconds(1))?.text == "news")
        #expect(try await durable.receive(timeout: .seconds(1))?.deliveryCount == 1)
        #expect(try await never.receive(timeout: .milliseconds(100)) == nil)
    }
}
