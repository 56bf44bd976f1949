import Conveyor

/// Strict ordering per key with message groups (JMSXGroupID): messages of one account always go to the
/// same consumer, in order, while different accounts are processed in parallel.
struct MessageGroupDemo: Demo {
    let name = "message-groups"
    let summary = "Ordering per key: JMSXGroupID pins each account to one consumer, in order, with parallelism across accounts."

    static let accounts = ["alice", "bob", "carol"]
    static let eventsPerAccount = 4
    static let tellers: [(name: String, work: Duration)] = [("teller-1", .milliseconds(8)), ("teller-2", .milliseconds(12))]

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            var configuration = BrokerConfiguration()
            configuration.prefetch = 1
            let broker = try store.openBroker(configuration)
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let events = Destination.q("account-events")
            narrator.explain("""
                Competing consumers process messages in parallel, so order across them is lost — but a balance \
                needs its deposits and withdrawals in order. Each event carries JMSXGroupID = account: the broker \
                gives a group to the first consumer that takes one of its messages and sends it every later message \
                of the group, so each account is handled by one teller, in order.
                """)
            let total = Self.accounts.count * Self.eventsPerAccount
            let producer = try connection.createSession().createProducer(for: events)
            for step in 1...Self.eventsPerAccount {
                for account in Self.accounts {
                    let message = try Message.text("\(account) #\(step)").with("JMSXGroupID", account).with("step", step)
                    _ = try await producer.send(message)
                    narrator.event("bank", .send, "\(account) #\(step) (group \(account)) → \(events)")
                }
            }
            let recorder = Recorder()
            try connection.start()
            var tasks: [Task<Void, any Error>] = []
            for teller in Self.tellers {
                let consumer = try connection.createSession().createConsumer(for: events)
                tasks.append(Task {
                    while recorder.total < total {
                        guard let message = try await consumer.receive(timeout: .milliseconds(20)) else { continue }
                        recorder.record(teller.name, message.shown)
                        narrator.event(teller.name, .receive, "applied \(message.shown)")
                        try await Task.sleep(for: teller.work)
                    }
                    consumer.close()
                })
            }
            try await waitUntil("every event was applied") { recorder.total >= total }
            for task in tasks { try await task.value }

            var report = DemoReport()
            report.received = recorder.received
            report["sent"] = total
            report["received"] = recorder.total
            var split = 0
            var outOfOrder = 0
            var owners: [String] = []
            for account in Self.accounts {
                let holders = recorder.received.filter { $0.value.contains { $0.hasPrefix(account + " ") } }
                if holders.count != 1 { split += 1 }
                for (teller, bodies) in holders {
                    owners.append("\(account) → \(teller)")
                    let steps = bodies.filter { $0.hasPrefix(account + " ") }.compactMap { Int($0.split(separator: "#").last ?? "") }
                    if steps != steps.sorted() { outOfOrder += 1 }
                }
            }
            report["groupsSplitAcrossConsumers"] = split
            report["groupsOutOfOrder"] = outOfOrder
            narrator.result("\(total) events applied; \(owners.joined(separator: ", ")); \(outOfOrder) group(s) out of order")
            return report
        }
    }
}
