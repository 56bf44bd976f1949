import Conveyor

/// A durable subscription keeps the messages published while its subscriber is offline, even across
/// a broker restart, and hands them over when it comes back.
struct DurableSubscriptionDemo: Demo {
    let name = "durable-subscription"
    let summary = "A durable subscriber goes offline, the broker restarts, and it still catches up on everything."

    static let whileOffline = ["invoice #2", "invoice #3", "invoice #4"]

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            let topic = Topic("invoices")
            let subscriptionName = "topic://invoices#billing:archive"
            var report = DemoReport()
            let recorder = Recorder()
            narrator.explain("""
                A durable subscription is identified by the client ID and a name (billing:archive). The broker \
                keeps its messages on disk while no consumer is open, and a restart does not lose them.
                """)

            // 1. Online: subscribe and receive one invoice.
            var broker = try store.openBroker()
            do {
                let billing = try ConnectionFactory(broker: broker).createConnection(clientID: "billing")
                let consumer = try await billing.createSession().createDurableConsumer(for: topic, name: "archive")
                narrator.event("billing", .info, "created durable subscription 'archive' on \(topic)")
                try billing.start()
                let publisher = try ConnectionFactory(broker: broker).createConnection()
                let producer = try publisher.createSession().createProducer(for: .topic(topic))
                _ = try await producer.send(.text("invoice #1"))
                narrator.event("accounting", .send, "invoice #1 → \(topic)")
                if let message = try await consumer.receive(timeout: .seconds(2)) {
                    narrator.event("billing", .receive, "got \(message.shown) while online")
                    recorder.record("billing", message.shown)
                }
                billing.close()
                narrator.event("billing", .store, "disconnected (the subscription stays)")

                narrator.section("billing is offline")
                for invoice in Self.whileOffline {
                    _ = try await producer.send(.text(invoice))
                    narrator.event("accounting", .send, "\(invoice) → \(topic) (kept for billing:archive)")
                }
                report["heldWhileOffline"] = broker.held(subscriptionName)
                narrator.event("broker", .store, "billing:archive holds \(report["heldWhileOffline"]) messages")
                publisher.close()
            }
            broker.close()
            narrator.event("broker", .store, "closed — as if the process stopped")

            // 2. Restart and catch up.
            narrator.section("the broker restarts and billing reconnects")
            broker = try store.openBroker()
            defer { broker.close() }
            report["heldAfterRestart"] = broker.held(subscriptionName)
            narrator.event("broker", .store, "reopened the store: billing:archive holds \(report["heldAfterRestart"]) messages")
            let billing = try ConnectionFactory(broker: broker).createConnection(clientID: "billing")
            let consumer = try await billing.createSession().createDurableConsumer(for: topic, name: "archive")
            try billing.start()
            narrator.event("billing", .info, "reopened durable subscription 'archive'")
            var caughtUp = 0
            while let message = try await consumer.receive(timeout: .milliseconds(300)) {
                narrator.event("billing", .receive, "caught up on \(message.shown)")
                recorder.record("billing", message.shown)
                caughtUp += 1
            }
            billing.close()

            report.received = recorder.received
            report["receivedOnline"] = 1
            report["caughtUp"] = caughtUp
            narrator.result("billing got 1 invoice online and caught up on \(caughtUp) after being offline across a restart")
            return report
        }
    }
}
