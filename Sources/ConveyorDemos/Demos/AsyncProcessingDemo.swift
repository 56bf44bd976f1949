import Conveyor
import Synchronization

/// Asynchronous processing (the seeds' registration example): the registration service answers at
/// once and publishes an event; mail and SMS listeners do the slow work afterwards.
struct AsyncProcessingDemo: Demo {
    let name = "async-processing"
    let summary = "Registration answers at once; mail and SMS listeners do the slow work asynchronously."

    static let users = ["alice", "bob", "carol"]
    static let mailWork = Duration.milliseconds(60)
    static let smsWork = Duration.milliseconds(40)

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            let broker = try store.openBroker()
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let registered = Destination.t("user.registered")
            narrator.explain("""
                Done serially, each registration would take database + mail (60 ms) + SMS (40 ms). Instead the \
                registration service stores the user, publishes 'user registered' and answers; a mail listener and \
                an SMS listener, each in its own session, do the slow work in parallel.
                """)
            let recorder = Recorder()
            for (service, work, what) in [("mail-service", Self.mailWork, "welcome mail"), ("sms-service", Self.smsWork, "welcome SMS")] {
                let consumer = try connection.createSession().createConsumer(for: registered)
                try consumer.setMessageListener { message in
                    let user = (try? message.property("user", as: String.self)) ?? "?"
                    narrator.event(service, .receive, "sending \(what) to \(user)…")
                    try await Task.sleep(for: work)
                    recorder.record(service, user)
                    narrator.event(service, .acknowledge, "\(what) to \(user) sent; message acknowledged")
                }
            }
            try connection.start()

            let producer = try connection.createSession().createProducer(for: registered)
            let longestAnswer = Mutex<Duration>(.zero)
            for user in Self.users {
                let started = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(3))  // the database write
                _ = try await producer.send(try Message.text("user registered").with("user", user))
                let answer = ContinuousClock.now - started
                longestAnswer.withLock { $0 = max($0, answer) }
                narrator.event("registration", .send, "\(user) stored, event published, answered in \(answer.wholeMilliseconds) ms")
            }
            try await waitUntil("every mail and SMS was sent") { recorder.total >= 2 * Self.users.count }

            var report = DemoReport()
            report.received = recorder.received
            report["registrations"] = Self.users.count
            report["mails"] = recorder.count("mail-service")
            report["sms"] = recorder.count("sms-service")
            let serial = (Self.mailWork + Self.smsWork).wholeMilliseconds + 3
            narrator.result("""
                \(Self.users.count) users registered, each answered in ≤ \(longestAnswer.withLock { $0 }.wholeMilliseconds) ms \
                (≈ \(serial) ms if done serially); \(report["mails"]) mails and \(report["sms"]) SMS sent in the background
                """)
            return report
        }
    }
}
