import Conveyor

/// Decoupling (the seeds' order → inventory, points, analytics): the order service publishes to one
/// topic and knows nothing of its consumers; each downstream system has its own durable subscription,
/// so one being down delays only itself.
struct DecouplingDemo: Demo {
    let name = "decoupling"
    let summary = "Order → inventory, points, analytics: one durable subscription per downstream system."

    static let orders: [(id: Int, item: String, total: Int)] = [(1001, "phone", 699), (1002, "case", 25), (1003, "charger", 39), (1004, "laptop", 1299)]
    static let systems = ["inventory", "points", "analytics"]

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            let broker = try store.openBroker()
            defer { broker.close() }
            let factory = ConnectionFactory(broker: broker)
            let topic = Topic("orders")
            narrator.explain("""
                The order service publishes to topic://orders and is done: it does not call inventory, points or \
                analytics, and does not know they exist. Each system has a durable subscription under its own \
                client ID, so analytics can be down during the sale and catch up afterwards without anyone waiting.
                """)
            let recorder = Recorder()
            var connections: [String: Connection] = [:]
            for system in Self.systems {
                let connection = try factory.createConnection(clientID: system)
                let consumer = try await connection.createSession().createDurableConsumer(for: topic, name: "orders")
                narrator.event(system, .info, "durable subscription \(system):orders on \(topic)")
                connections[system] = connection
                if system == "analytics" { continue }
                try consumer.setMessageListener { message in
                    let id = (try? message.property("order", as: Int.self)) ?? 0
                    let total = (try? message.property("total", as: Int.self)) ?? 0
                    let action = system == "inventory"
                        ? "reserved stock for order \(id) (\(message.shown))"
                        : "awarded \(total / 10) points for order \(id)"
                    recorder.record(system, "order \(id)")
                    narrator.event(system, .receive, action)
                }
                try connection.start()
            }
            connections["analytics"]?.close()
            narrator.event("analytics", .reject, "goes down for maintenance")

            let orderService = try factory.createConnection()
            let producer = try orderService.createSession().createProducer(for: .topic(topic))
            for order in Self.orders {
                let message = try Message.text(order.item).with("order", order.id).with("total", order.total)
                _ = try await producer.send(message)
                narrator.event("order-service", .send, "order \(order.id) (\(order.item), \(order.total)) → \(topic)")
            }
            try await waitUntil("inventory and points processed every order") {
                recorder.count("inventory") >= Self.orders.count && recorder.count("points") >= Self.orders.count
            }
            let waiting = broker.held("topic://orders#analytics:orders")
            narrator.event("broker", .store, "analytics:orders holds \(waiting) orders while analytics is down")

            narrator.section("analytics comes back")
            let analytics = try factory.createConnection(clientID: "analytics")
            let consumer = try await analytics.createSession().createDurableConsumer(for: topic, name: "orders")
            try analytics.start()
            while let message = try await consumer.receive(timeout: .milliseconds(300)) {
                let id = (try? message.property("order", as: Int.self)) ?? 0
                recorder.record("analytics", "order \(id)")
                narrator.event("analytics", .receive, "recorded order \(id) in the sales report")
            }
            analytics.close()
            for connection in connections.values { connection.close() }
            orderService.close()

            var report = DemoReport()
            report.received = recorder.received
            report["published"] = Self.orders.count
            report["heldForAnalytics"] = waiting
            for system in Self.systems { report[system] = recorder.count(system) }
            narrator.result("""
                \(Self.orders.count) orders published once; inventory \(report["inventory"]), points \(report["points"]), \
                analytics \(report["analytics"]) (after coming back)
                """)
            return report
        }
    }
}
