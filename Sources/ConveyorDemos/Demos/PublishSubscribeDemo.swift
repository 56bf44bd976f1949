import Conveyor

/// Publish/subscribe fan-out: every subscriber of a topic gets its own copy of every message; a
/// subscriber that joins late sees only what is published after it joined.
struct PublishSubscribeDemo: Demo {
    let name = "publish-subscribe"
    let summary = "Fan-out on a topic: every subscriber gets every price; a late subscriber misses the past."

    static let subscribers = ["dashboard", "alerts", "audit-log"]
    static let prices = ["AAPL 189.20", "AAPL 189.45", "AAPL 188.90"]

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            let broker = try store.openBroker()
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let prices = Topic("prices")
            narrator.explain("""
                A topic copies each message to every subscription open at the time it is published. Three \
                subscribers listen on topic://prices; each receives all three prices, independently of the others.
                """)
            let recorder = Recorder()
            var consumers: [MessageConsumer] = []
            for subscriber in Self.subscribers {
                let consumer = try connection.createSession().createConsumer(for: .topic(prices))
                try consumer.setMessageListener { message in
                    narrator.event(subscriber, .receive, "got \(message.shown)")
                    recorder.record(subscriber, message.shown)
                }
                consumers.append(consumer)
                narrator.event(subscriber, .info, "subscribed to \(prices)")
            }
            try connection.start()
            let producer = try connection.createSession().createProducer(for: .topic(prices))
            for price in Self.prices {
                _ = try await producer.send(.text(price))
                narrator.event("ticker", .send, "\(price) → \(prices)")
            }
            try await waitUntil("every subscriber got every price") {
                recorder.total >= Self.subscribers.count * Self.prices.count
            }

            narrator.section("a subscriber that joins late")
            narrator.explain("""
                A non-durable subscription starts when its consumer is created: the late subscriber gets \
                nothing of what was published before it, only what comes next.
                """)
            let late = try connection.createSession().createConsumer(for: .topic(prices))
            narrator.event("late-joiner", .info, "subscribed to \(prices)")
            let next = "AAPL 190.00"
            _ = try await producer.send(.text(next))
            narrator.event("ticker", .send, "\(next) → \(prices)")
            while let message = try await late.receive(timeout: .milliseconds(200)) {
                narrator.event("late-joiner", .receive, "got \(message.shown)")
                recorder.record("late-joiner", message.shown)
            }
            try await waitUntil("every subscriber got the last price") {
                recorder.total >= Self.subscribers.count * (Self.prices.count + 1) + 1
            }

            var report = DemoReport()
            report.received = recorder.received
            report["published"] = Self.prices.count + 1
            report["subscribers"] = Self.subscribers.count
            for subscriber in Self.subscribers + ["late-joiner"] { report[subscriber] = recorder.count(subscriber) }
            narrator.result("""
                \(Self.prices.count + 1) prices published, each delivered to \(Self.subscribers.count) subscribers \
                (\(recorder.total - recorder.count("late-joiner")) deliveries); the late joiner got \(recorder.count("late-joiner"))
                """)
            return report
        }
    }
}
