import Conveyor

/// Acknowledge modes and redelivery: auto-acknowledge, client-acknowledge with recover, and a poison
/// message that is redelivered until the redelivery policy moves it to the dead letter queue.
struct AcknowledgeDemo: Demo {
    let name = "acknowledge"
    let summary = "Acknowledge modes, recover and redelivery, and a poison message ending in the dead letter queue."

    static let maximumRedeliveries = 2

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            var configuration = BrokerConfiguration()
            var policy = DestinationPolicy()
            policy.redelivery = RedeliveryPolicy(maximumRedeliveries: Self.maximumRedeliveries)
            configuration.policies["payments"] = policy
            let broker = try store.openBroker(configuration)
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            try connection.start()
            let payments = Destination.q("payments")
            let producer = try connection.createSession().createProducer(for: payments)
            var report = DemoReport()
            let recorder = Recorder()

            // 1. AUTO_ACKNOWLEDGE
            narrator.section("AUTO_ACKNOWLEDGE")
            narrator.explain("The message is acknowledged as soon as receive returns it: if the application then crashes, it is lost to it.")
            let auto = try connection.createSession(.autoAcknowledge)
            let autoConsumer = try auto.createConsumer(for: payments)
            _ = try await producer.send(.text("payment #1"))
            narrator.event("checkout", .send, "payment #1 → \(payments)")
            if let message = try await autoConsumer.receive(timeout: .seconds(2)) {
                recorder.record("auto", message.shown)
                narrator.event("auto-worker", .receive, "got \(message.shown)")
                narrator.event("auto-worker", .acknowledge, "acknowledged automatically on receipt")
            }
            autoConsumer.close()
            report["autoAcknowledged"] = recorder.count("auto")

            // 2. CLIENT_ACKNOWLEDGE with recover
            narrator.section("CLIENT_ACKNOWLEDGE and recover")
            narrator.explain("""
                The application acknowledges when its work is done. recover() hands back everything not yet \
                acknowledged: it comes again flagged JMSRedelivered, with its delivery count raised. One \
                acknowledge() then acknowledges every message the session has consumed so far.
                """)
            let client = try connection.createSession(.clientAcknowledge)
            let clientConsumer = try client.createConsumer(for: payments)
            for n in 2...3 {
                _ = try await producer.send(.text("payment #\(n)"))
                narrator.event("checkout", .send, "payment #\(n) → \(payments)")
            }
            for _ in 0..<2 {
                if let message = try await clientConsumer.receive(timeout: .seconds(2)) {
                    narrator.event("client-worker", .receive, "got \(message.shown), not acknowledged yet")
                }
            }
            try await client.recover()
            narrator.event("client-worker", .redeliver, "recover(): the bank did not answer, start again")
            var last: Message?
            for _ in 0..<2 {
                if let message = try await clientConsumer.receive(timeout: .seconds(2)) {
                    narrator.event("client-worker", .receive, "got \(message.shown)\(message.redeliveryNote)")
                    if message.redelivered { report["redeliveredAfterRecover"] += 1 }
                    recorder.record("client", message.shown)
                    last = message
                }
            }
            if let last {
                try await last.acknowledge()
                narrator.event("client-worker", .acknowledge, "acknowledge() on \(last.shown): acknowledges both payments")
            }
            report["clientAcknowledged"] = recorder.count("client")

            // 3. A poison message
            narrator.section("a poison message and the dead letter queue")
            narrator.explain("""
                payment #4 is malformed: processing fails every time. The redelivery policy of queue://payments \
                allows \(Self.maximumRedeliveries) redeliveries (\(Self.maximumRedeliveries + 1) deliveries in all); \
                then the broker moves the message to queue://DLQ.payments instead of delivering it again, so it \
                cannot block the queue for ever.
                """)
            _ = try await producer.send(.text("payment #4 (malformed)"))
            narrator.event("checkout", .send, "payment #4 (malformed) → \(payments)")
            _ = try await producer.send(.text("payment #5"))
            narrator.event("checkout", .send, "payment #5 → \(payments)")
            var poisonDeliveries = 0
            while let message = try await clientConsumer.receive(timeout: .milliseconds(300)) {
                if message.shown.contains("malformed") {
                    poisonDeliveries += 1
                    narrator.event("client-worker", .receive, "got \(message.shown)\(message.redeliveryNote)")
                    narrator.event("client-worker", .redeliver, "processing failed → recover()")
                    try await client.recover()
                } else {
                    narrator.event("client-worker", .receive, "got \(message.shown)\(message.redeliveryNote)")
                    try await message.acknowledge()
                    recorder.record("client", message.shown)
                    narrator.event("client-worker", .acknowledge, "acknowledged \(message.shown)")
                }
            }
            report["poisonDeliveries"] = poisonDeliveries
            let stats = broker.counters("queue://payments")
            report["deadLettered"] = stats?.deadLettered ?? 0
            narrator.event("broker", .store, "moved payment #4 to queue://DLQ.payments after \(poisonDeliveries) deliveries")

            let dlq = try connection.createSession().createConsumer(for: .q("DLQ.payments"))
            while let message = try await dlq.receive(timeout: .milliseconds(200)) {
                let reason = (try? message.property(Broker.deadLetterReasonProperty, as: String.self)) ?? "?"
                recorder.record("operator", message.shown)
                narrator.event("operator", .receive, "found \(message.shown) in DLQ.payments: \(reason)")
            }
            report["deadLetterQueueReceived"] = recorder.count("operator")
            report["left"] = broker.held("queue://payments")
            report.received = recorder.received
            narrator.result("""
                auto: \(report["autoAcknowledged"]) acknowledged on receipt; client: \(report["redeliveredAfterRecover"]) \
                redelivered by recover, then acknowledged; poison: \(poisonDeliveries) deliveries, then \
                \(report["deadLettered"]) dead-lettered
                """)
            return report
        }
    }
}
