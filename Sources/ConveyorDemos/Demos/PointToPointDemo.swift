import Conveyor

/// Point-to-point with competing consumers: two workers read one queue, each order goes to exactly
/// one of them, and a faster worker simply takes more.
struct PointToPointDemo: Demo {
    let name = "point-to-point"
    let summary = "Competing consumers on one queue: every order is processed by exactly one worker."

    static let orders = 8
    static let workers: [(name: String, work: Duration)] = [("worker-fast", .milliseconds(10)), ("worker-slow", .milliseconds(30))]

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            var configuration = BrokerConfiguration()
            configuration.prefetch = 1  // take one order at a time, so the faster worker takes more
            let broker = try store.openBroker(configuration)
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let orders = Destination.q("orders")

            narrator.explain("""
                A queue delivers each message to exactly one consumer. Two workers compete for queue://orders: \
                whoever asks first gets the next order. Prefetch is 1, so a worker takes a new order only when it is \
                done with the last one: the fast worker ends up doing more of the work.
                """)
            let recorder = Recorder()
            try connection.start()
            var workerTasks: [Task<Void, any Error>] = []
            for worker in Self.workers {
                let session = try connection.createSession(.autoAcknowledge)
                let consumer = try session.createConsumer(for: orders)
                workerTasks.append(Task {
                    while recorder.total < Self.orders {
                        guard let message = try await consumer.receive(timeout: .milliseconds(20)) else { continue }
                        narrator.event(worker.name, .receive, "got \(message.shown) (acknowledged on receipt)")
                        recorder.record(worker.name, message.shown)
                        try await Task.sleep(for: worker.work)
                    }
                    consumer.close()
                })
            }

            let producer = try connection.createSession().createProducer(for: orders)
            for n in 1...Self.orders {
                _ = try await producer.send(.text("order #\(n)"))
                narrator.event("shop", .send, "order #\(n) → \(orders)")
            }
            try await waitUntil("every order was processed") { recorder.total >= Self.orders }
            for task in workerTasks { try await task.value }

            var report = DemoReport()
            report.received = recorder.received
            report["sent"] = Self.orders
            report["received"] = recorder.total
            report["distinct"] = Set(recorder.received.values.flatMap { $0 }).count
            report["dequeued"] = broker.counters("queue://orders")?.dequeued ?? 0
            report["left"] = broker.held("queue://orders")
            let shares = Self.workers.map { "\($0.name) \(recorder.count($0.name))" }.joined(separator: ", ")
            narrator.result("\(Self.orders) orders sent, \(report["distinct"]) processed once each (\(shares)); \(report["left"]) left on the queue")
            return report
        }
    }
}
