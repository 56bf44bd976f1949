import Conveyor

/// Transactions: receive an order and send a shipment as one unit. A rollback undoes both (the order
/// comes back, redelivered; no shipment exists); a commit does both at once.
struct TransactionDemo: Demo {
    let name = "transactions"
    let summary = "Take an order and send its shipment atomically: rollback undoes both, commit does both."

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            let broker = try store.openBroker()
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            try connection.start()
            let orders = Destination.q("orders")
            let shipments = Destination.q("shipments")
            var report = DemoReport()
            let recorder = Recorder()
            narrator.explain("""
                In a transacted session, sends are held and receives are not acknowledged until commit(). \
                The warehouse takes an order from queue://orders and sends a shipment to queue://shipments in one \
                transaction: either both happen or neither does.
                """)
            _ = try await connection.createSession().createProducer(for: orders).send(.text("order #7"))
            narrator.event("shop", .send, "order #7 → \(orders)")

            let session = try connection.createSession(.transacted)
            let consumer = try session.createConsumer(for: orders)
            let producer = try session.createProducer(for: shipments)

            narrator.section("attempt 1: rollback")
            if let order = try await consumer.receive(timeout: .seconds(2)) {
                narrator.event("warehouse", .receive, "got \(order.shown) (inside the transaction)")
                _ = try await producer.send(.text("shipment for \(order.shown)"))
                narrator.event("warehouse", .send, "shipment for \(order.shown) → \(shipments) (held until commit)")
                report["shipmentsVisibleBeforeCommit"] = broker.held("queue://shipments")
                narrator.event("broker", .store, "queue://shipments holds \(report["shipmentsVisibleBeforeCommit"]) — the send is not visible yet")
            }
            try await session.rollback()
            narrator.event("warehouse", .redeliver, "the label printer failed → rollback()")
            report["ordersAfterRollback"] = broker.held("queue://orders")
            report["shipmentsAfterRollback"] = broker.held("queue://shipments")
            narrator.event("broker", .store, """
                after rollback: orders holds \(report["ordersAfterRollback"]), shipments holds \(report["shipmentsAfterRollback"])
                """)

            narrator.section("attempt 2: commit")
            if let order = try await consumer.receive(timeout: .seconds(2)) {
                narrator.event("warehouse", .receive, "got \(order.shown)\(order.redeliveryNote)")
                if order.redelivered { report["redelivered"] = 1 }
                _ = try await producer.send(.text("shipment for \(order.shown)"))
                narrator.event("warehouse", .send, "shipment for \(order.shown) → \(shipments) (held until commit)")
            }
            try await session.commit()
            narrator.event("warehouse", .acknowledge, "commit(): the order is acknowledged and the shipment sent, in one store transaction")
            report["ordersAfterCommit"] = broker.held("queue://orders")
            report["shipmentsAfterCommit"] = broker.held("queue://shipments")
            narrator.event("broker", .store, "after commit: orders holds \(report["ordersAfterCommit"]), shipments holds \(report["shipmentsAfterCommit"])")
            session.close()

            let courier = try connection.createSession().createConsumer(for: shipments)
            while let shipment = try await courier.receive(timeout: .milliseconds(200)) {
                recorder.record("courier", shipment.shown)
                narrator.event("courier", .receive, "got \(shipment.shown)")
            }
            report.received = recorder.received
            narrator.result("the rollback left no shipment and put the order back; the commit moved it exactly once")
            return report
        }
    }
}
