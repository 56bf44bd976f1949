@testable import Conveyor
import Foundation
import Testing

/// Crash safety of durable subscriptions with real processes: the worker's topics mode
/// (Sources/ConveyorCrashWorker/TopicsMode.swift) publishes to a topic with two durable
/// subscriptions, sub-a consumed in transactions and sub-b with client acknowledgement, and is killed
/// with SIGKILL at random moments on the same directory. The journal is checked line by line as in
/// the queue test, and each subscription on its own against what the reopened store holds: an
/// acknowledgement on one subscription must not remove the message from the other.
extension HeavyTests.CrashRecoveryTests {
    static let topicCycles = 10
    static let topic = Topic("crash-topic")
    /// The client ID the worker's connection has, which names its durable subscriptions.
    static let clientID = "crash-worker"
    /// The worker's subscriptions by journal tag: `sub=a` is the subscription `sub-a`.
    static let subscriptionTags = ["a", "b"]

    @Test("Durable subscriptions survive repeated SIGKILL of a publishing and subscribing process",
          arguments: [StoreKind.lmdb, .file])
    func durableSubscriptionsSurviveRepeatedSIGKILL(store kind: StoreKind) async throws {
        guard let worker = CrashWorker.locateOrRecordIssue() else { return }
        let started = ContinuousClock.now
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-crash-topics-\(kind.rawValue)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        guard let (journal, delays) = await Self.killRepeatedly(
            worker, mode: "topics", store: kind, directory: directory, cycles: Self.topicCycles)
        else { return }

        // Reopen in this process, re-attach both subscriptions as the worker made them (a different
        // topic or selector would replace them) and compare what each holds with the journal.
        let broker = try Self.reopen(kind, at: directory)
        defer { broker.close() }
        let depths = Dictionary(broker.durableSubscriptions().map { ($0.key.name, $0.statistics.depth) }) { $1 }
        #expect(
            Set(broker.durableSubscriptions().map(\.key)) == Set(Self.subscriptionTags.map { SubscriptionKey(clientID: Self.clientID, name: "sub-\($0)") }),
            "the store holds the worker's two durable subscriptions")
        let connection = try ConnectionFactory(broker: broker).createConnection(clientID: Self.clientID)
        try connection.start()
        var present: [String: [Int: [Message]]] = [:]
        for tag in Self.subscriptionTags {
            let name = "sub-\(tag)"
            let session = try connection.createSession(.clientAcknowledge)
            let consumer = try await session.createDurableConsumer(for: Self.topic, name: name)
            present[tag] = try await Self.drain(consumer, depth: depths[name] ?? 0)
            #expect(journal.consumption(of: tag).subscribedAbove == 0, "\(name) existed before the first publish")
            #expect(!journal.consumption(of: tag).acked.isEmpty, "\(name) acknowledged messages")
            Self.record(
                journal.storeProblems(present[tag] ?? [:], of: tag)
                    .map { "\(kind) \(name) after the final kill: \($0) (kill delays \(delays) ms)" },
                what: "problems in \(name) in the final store")
        }
        let deadLetters = try connection.createSession().createConsumer(for: .queue(Queue("DLQ.crash-topic")))
        #expect(try await deadLetters.receiveNoWait() == nil, "nothing is dead-lettered (unlimited redeliveries)")
        #expect(!journal.sent.isEmpty, "the worker published messages")

        // Messages one subscription acknowledged and the other had not yet: the other still had to
        // hold them (checked above). The worker keeps sub-b about 100 messages behind, so there are.
        let a = journal.consumption(of: "a")
        let b = journal.consumption(of: "b")
        let onlyOnA = journal.sent.intersection(a.acked).subtracting(b.acking).filter { present["b"]?[$0] != nil }
        let onlyOnB = journal.sent.intersection(b.acked).subtracting(a.acking).filter { present["a"]?[$0] != nil }
        #expect(!onlyOnA.isEmpty, "sub-b (which the worker keeps behind) holds messages sub-a acknowledged")
        let seconds = (ContinuousClock.now - started).components.seconds
        print("""
            CrashRecoveryTests[topics, \(kind)]: \(Self.topicCycles) SIGKILL cycles (delays \(delays) ms) in ~\(seconds) s; \
            \(journal.sent.count) messages published; \
            \(Self.subscriptionTags.map { tag in
                let consumed = journal.consumption(of: tag)
                return """
                    sub-\(tag): \(consumed.acked.count) acknowledged, \(consumed.deliveries) deliveries \
                    (\(consumed.redeliveries) redelivered, \(consumed.redeliveriesAfterRestart) after a restart), \
                    \(present[tag]?.count ?? 0) left
                    """
            }.joined(separator: "; ")); \
            left on one subscription after the other acknowledged them: \(onlyOnA.count) on sub-b, \(onlyOnB.count) on sub-a
            """)
    }
}
