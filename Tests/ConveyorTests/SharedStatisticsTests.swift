// Statistics of an LMDB store shared by processes (`sharing: .processes`), tested in one process:
// the "other processes" are member rows and published counters the test writes itself
// (`addMemberForTesting`, `publishStatisticsForTesting`). Tests with real child processes are in
// SharedStoreProcessTests; the `conveyor stats` command is tested in StatsCommandTests.
@testable import Conveyor
@testable import ConveyorLMDB
import Foundation
import Synchronization
import Testing

extension HeavyTests {
@Suite("Statistics of a shared LMDB store", .timeLimit(.minutes(2)))
struct SharedStatisticsTests {
    static let shared = LMDBStore.Options(sharing: .processes)
    let temporary = SharedTemporaryDirectory()
    var directory: String { temporary.path }

    /// A shared store, open, holding one message on `q` (so that `q` has a destination ID).
    func openStore() throws -> LMDBStore {
        let store = LMDBStore(directory: directory, options: Self.shared)
        _ = try store.open()
        try store.commit(StoreBatch([.add(StoredMessage(sequence: store.allocateSequence(), message: .text("m"), targets: [.queue("q")]))]))
        return store
    }

    @Test
    func aProcessReadsWhatOthersPublishedButNeverItsOwnPublishedCounters() throws {
        let store = try openStore()
        defer { store.close() }
        let own = DestinationCounters(enqueued: 3, consumers: 1, inFlight: 1, inFlightBytes: 1)
        store.shareStatistics { [.queue("q"): own] }
        store.publishStatisticsIfChanged()
        #expect(store.publishedStatisticsForTesting == [.queue("q"): own])
        #expect(try store.countersBeyondThisProcess().isEmpty, "this process's published counters must not count twice")

        let other = try store.addMemberForTesting(pid: 999_999, claims: [])
        let theirs = DestinationCounters(enqueued: 5, dequeued: 2, consumers: 2, inFlight: 1, inFlightBytes: 10)
        try store.publishStatisticsForTesting([.queue("q"): theirs, .queue("never stored"): theirs], of: other.id)
        let beyond = try store.countersBeyondThisProcess()
        #expect(beyond[.queue("q")] == theirs)
        #expect(beyond[.queue("never stored")] == theirs)
    }

    @Test
    func countersArePublishedOnlyWhenTheyChange() throws {
        let store = try openStore()
        defer { store.close() }
        let counters = Mutex([StoreQueueKey: DestinationCounters]())
        store.shareStatistics { counters.withLock { $0 } }
        store.publishStatisticsIfChanged()
        #expect(try store.allPublishedStatisticsForTesting().isEmpty, "nothing counted, nothing published")
        counters.withLock { $0 = [.queue("q"): DestinationCounters(enqueued: 1)] }
        store.publishStatisticsIfChanged()
        #expect(try store.allPublishedStatisticsForTesting().values.first == [.queue("q"): DestinationCounters(enqueued: 1)])
        // Back to nothing: the published value goes.
        counters.withLock { $0 = [:] }
        store.publishStatisticsIfChanged()
        #expect(try store.allPublishedStatisticsForTesting().isEmpty)
    }

    @Test
    func closingKeepsTheCumulativeCountersOnceAndNotTheLiveOnes() throws {
        do {
            let store = try openStore()
            store.shareStatistics { [.queue("q"): DestinationCounters(enqueued: 2, dequeued: 1, consumers: 1, inFlight: 1, inFlightBytes: 4)] }
            store.publishStatisticsIfChanged()
            store.close()
        }
        for _ in 0..<2 {
            // Reopening (with nothing counted) neither loses nor repeats them.
            let store = LMDBStore(directory: directory, options: Self.shared)
            _ = try store.open()
            #expect(try store.countersBeyondThisProcess() == [.queue("q"): DestinationCounters(enqueued: 2, dequeued: 1)])
            store.close()
        }
    }

    @Test
    func theReaperKeepsWhatADeadMemberPublishedOnce() throws {
        let store = try openStore()
        let dead = try store.addMemberForTesting(pid: 999_999, claims: [])
        try store.publishStatisticsForTesting([.queue("q"): DestinationCounters(enqueued: 7, expired: 1, consumers: 1, inFlight: 2)], of: dead.id)
        #expect(try store.countersBeyondThisProcess()[.queue("q")] == DestinationCounters(enqueued: 7, expired: 1, consumers: 1, inFlight: 2))

        #expect(store.reapDeadMembers() == 1)
        #expect(try store.allPublishedStatisticsForTesting().isEmpty)
        // Its consumer and in-flight messages are gone with it; what it counted stays.
        #expect(try store.countersBeyondThisProcess()[.queue("q")] == DestinationCounters(enqueued: 7, expired: 1))
        #expect(store.reapDeadMembers() == 0)
        store.close()

        let reopened = LMDBStore(directory: directory, options: Self.shared)
        _ = try reopened.open()
        defer { reopened.close() }
        #expect(try reopened.countersBeyondThisProcess()[.queue("q")] == DestinationCounters(enqueued: 7, expired: 1))
    }

    @Test
    func aMemberWhoseCountersWereKeptBeforeItDiedIsNotCountedTwice() throws {
        let store = try openStore()
        defer { store.close() }
        let dying = try store.addMemberForTesting(pid: 999_999, claims: [])
        try store.publishStatisticsForTesting([.queue("q"): DestinationCounters(enqueued: 4)], of: dying.id)
        // It kept its counters as a closing process does, and died before deleting what it published.
        try store.keepStatistics(ofDead: [dying])
        #expect(try store.allPublishedStatisticsForTesting()[dying.id] != nil)
        #expect(try store.countersBeyondThisProcess()[.queue("q")] == DestinationCounters(enqueued: 4), "kept and published: counted once")
        #expect(store.reapDeadMembers() == 1)
        #expect(try store.countersBeyondThisProcess()[.queue("q")] == DestinationCounters(enqueued: 4))
    }

    @Test
    func theFirstProcessOfANewGroupKeepsWhatNobodyReaped() throws {
        do {
            let store = try openStore()
            // A process that died with nobody left to reap it.
            let dead = try store.addMemberForTesting(pid: 999_999, claims: [])
            try store.publishStatisticsForTesting([.queue("q"): DestinationCounters(enqueued: 6, deadLettered: 1, consumers: 1)], of: dead.id)
            store.close()
        }
        for _ in 0..<2 {
            let store = LMDBStore(directory: directory, options: Self.shared)
            _ = try store.open()
            #expect(try store.countersBeyondThisProcess() == [.queue("q"): DestinationCounters(enqueued: 6, deadLettered: 1)])
            store.close()
        }
    }

    @Test
    func deletingASubscriptionDeletesItsKeptCounters() throws {
        let key = SubscriptionKey(clientID: "c", name: "audit")
        let record = SubscriptionRecord(key: key, topic: "events", selector: nil, noLocal: false, isShared: false)
        do {
            let store = try openStore()
            try store.commit(StoreBatch([.saveSubscription(record)]))
            store.shareStatistics { [.subscription(key): DestinationCounters(enqueued: 3), .queue("q"): DestinationCounters(enqueued: 1)] }
            store.close()
        }
        let store = LMDBStore(directory: directory, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        #expect(try store.countersBeyondThisProcess()[.subscription(key)] == DestinationCounters(enqueued: 3))
        try store.commit(StoreBatch([.deleteSubscription(key)]))
        #expect(try store.countersBeyondThisProcess() == [.queue("q"): DestinationCounters(enqueued: 1)])
        // Created again under the same key, it starts from zero.
        try store.commit(StoreBatch([.saveSubscription(record)]))
        #expect(try store.countersBeyondThisProcess()[.subscription(key)] == nil)
    }

    // MARK: Through a broker

    @Test
    func aBrokersCountersOutliveItAndCountOnceWhileItRuns() async throws {
        do {
            let broker = try Broker(store: LMDBStore(directory: directory, options: Self.shared))
            let connection = try ConnectionFactory(broker: broker).createConnection()
            try connection.start()
            let session = try connection.createSession(.clientAcknowledge)
            let queue = Queue("orders")
            _ = try await session.createProducer(for: .queue(queue)).sendTexts(2)
            let consumer = try session.createConsumer(for: .queue(queue))
            let message = try #require(try await consumer.receive(timeout: .seconds(5)))
            try await message.acknowledge()
            consumer.close()
            // Once this broker has published its counters, they still count once.
            let store = try #require(broker.store as? LMDBStore)
            #expect(await waitUntil(timeout: .seconds(10)) { store.publishedStatisticsForTesting[.queue("orders")]?.dequeued == 1 })
            let live = broker.statistics().first { $0.name == "queue://orders" }
            #expect(live?.enqueued == 2)
            #expect(live?.dequeued == 1)
            #expect(live.map { $0.depth + $0.inFlight } == 1)
            broker.close()
        }
        let broker = try Broker(store: LMDBStore(directory: directory, options: Self.shared))
        defer { broker.close() }
        let orders = try #require(broker.statistics().first { $0.name == "queue://orders" })
        #expect(orders.enqueued == 2)
        #expect(orders.dequeued == 1)
        #expect(orders.depth == 1)
        #expect(orders.inFlight == 0)
        #expect(orders.consumers == 0)
        #expect(broker.statistics(for: Queue("orders"))?.enqueued == 2)
    }

    @Test
    func durableSubscriptionsShowTheKeptCounters() async throws {
        let topic = Topic("events")
        do {
            let broker = try Broker(store: LMDBStore(directory: directory, options: Self.shared))
            let connection = try ConnectionFactory(broker: broker).createConnection(clientID: "c")
            let session = try connection.createSession()
            let subscriber = try await session.createDurableConsumer(for: topic, name: "audit")
            subscriber.close()
            _ = try await session.createProducer(for: .topic(topic)).sendTexts(3)
            broker.close()
        }
        let broker = try Broker(store: LMDBStore(directory: directory, options: Self.shared))
        defer { broker.close() }
        let audit = try #require(broker.durableSubscriptions().first)
        #expect(audit.statistics.enqueued == 3)
        #expect(audit.statistics.depth == 3)
    }

    @Test
    func aSingleProcessStoreKeepsNoCounters() async throws {
        do {
            let broker = try Broker(store: LMDBStore(directory: directory))
            let session = try ConnectionFactory(broker: broker).createConnection().createSession()
            _ = try await session.createProducer(for: .queue(Queue("orders"))).sendTexts(2)
            #expect(broker.statistics().first?.enqueued == 2)
            broker.close()
        }
        let broker = try Broker(store: LMDBStore(directory: directory))
        defer { broker.close() }
        let orders = try #require(broker.statistics().first { $0.name == "queue://orders" })
        #expect(orders.enqueued == 0, "single-process counters are the broker's own, since it opened")
        #expect(orders.depth == 2)
    }
}
}
