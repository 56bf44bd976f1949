import Conveyor
import ConveyorLMDB
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Several processes on one LMDB store (`sharing: .processes`): this test process is one member,
/// `ConveyorCrashWorker shared …` children (Sources/ConveyorCrashWorker/SharedMode.swift) are the
/// others. Every wait is on a condition with a timeout; the one-way latency bound is measured by
/// the X1 benchmark, not here.
extension HeavyTests {
@Suite("Processes sharing an LMDB store", .timeLimit(.minutes(3)))
struct SharedStoreProcessTests {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("conveyor-shared-\(UUID().uuidString)").path

    func openShared() throws -> Broker {
        try Broker(store: LMDBStore(directory: directory, options: .init(sharing: .processes)))
    }

    /// Starts a worker role; it stops when its standard input closes (or this process ends).
    func start(_ arguments: [String]) throws -> WorkerProcess {
        guard let executable = CrashWorker.locate() else {
            throw ConveyorTestError("the ConveyorCrashWorker executable was not found; build it with `swift build`")
        }
        return try WorkerProcess(executable, arguments: ["shared", directory] + arguments, keepingInputOpen: true)
    }

    /// Waits for a worker's `READY` line.
    func ready(_ worker: WorkerProcess) async throws {
        let isReady = await waitUntil(timeout: .seconds(60)) { !worker.lines(startingWith: "READY").isEmpty || !worker.process.isRunning }
        guard isReady, worker.process.isRunning else {
            throw ConveyorTestError("the worker did not get ready:\(worker.output.text)\(worker.errors.text)")
        }
    }

    /// The numbers of the messages a worker reported, in order.
    func received(_ worker: WorkerProcess) -> [Int] {
        worker.lines(startingWith: "GOT ").compactMap { Int($0.split(separator: " ")[1]) }
    }

    /// Stops workers and waits until they have ended, so that their output is complete.
    func stop(_ workers: [WorkerProcess]) async {
        for worker in workers { worker.closeInput() }
        let ended = await waitUntil(timeout: .seconds(20)) { workers.allSatisfy(\.isDone) }
        if !ended { for worker in workers { worker.killIfRunning() } }
    }

    func send(_ count: Int, to destination: Destination, from broker: Broker, options: SendOptions = .init()) async throws {
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let session = try connection.createSession(.transacted)
        let producer = try session.createProducer(for: destination)
        for n in 1...count {
            _ = try await producer.send(try Message.text("message \(n)").with("n", n), options: options)
            if n % 50 == 0 || n == count { try await session.commit() }
        }
        connection.close()
    }

    @Test("Competing consumers in two processes get every message exactly once")
    func competingConsumersInTwoProcessesGetEveryMessageExactlyOnce() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let workers = try [start(["consume", "work", "client"]), start(["consume", "work", "auto"])]
        defer { for worker in workers { worker.killIfRunning() } }
        for worker in workers { try await ready(worker) }

        let total = 1_000
        try await send(total, to: .queue(Queue("work")), from: broker)
        let all = await waitUntil(timeout: .seconds(90)) { workers.map { received($0).count }.reduce(0, +) >= total }
        await stop(workers)

        let numbers = workers.flatMap(received)
        #expect(all, "only \(numbers.count) of \(total) messages arrived")
        #expect(numbers.count == total, "a message was delivered twice")
        #expect(Set(numbers) == Set(1...total))
        #expect(workers.allSatisfy { !received($0).isEmpty }, "one process got nothing: the consumers did not compete")
        // Each process sees one producer's messages in the order it sent them.
        for worker in workers { #expect(received(worker) == received(worker).sorted()) }
    }

    @Test("Consumers with selectors in two processes each get what they select, and nothing holds the rest back")
    func consumersWithSelectorsInTwoProcessesEachGetWhatTheySelect() async throws {
        let broker = try openShared()
        defer { broker.close() }
        // Each holds what it receives unacknowledged: a process that claimed messages its consumer
        // does not select would keep them from the other one for good.
        let low = try start(["consume", "picky", "client", "hold", "selector=n <= 10"])
        let high = try start(["consume", "picky", "client", "hold", "selector=n > 10"])
        defer { for worker in [low, high] { worker.killIfRunning() } }
        for worker in [low, high] { try await ready(worker) }
        try await send(20, to: .queue(Queue("picky")), from: broker)
        #expect(await waitUntil(timeout: .seconds(30)) { received(low).count + received(high).count >= 20 })
        await stop([low, high])
        #expect(received(low) == Array(1...10))
        #expect(received(high) == Array(11...20))
    }

    @Test("Messages a killed process held unacknowledged go to the survivors, flagged redelivered")
    func messagesAKilledProcessHeldGoToTheSurvivorsFlaggedRedelivered() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let count = 20
        try await send(count, to: .queue(Queue("handover")), from: broker)
        let holder = try start(["consume", "handover", "client", "hold"])
        defer { holder.killIfRunning() }
        try await ready(holder)
        #expect(await waitUntil(timeout: .seconds(30)) { received(holder).count == count })

        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        let session = try connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: .queue(Queue("handover")))
        // Everything is claimed by the holder while it lives.
        #expect(try await consumer.receiveNoWait() == nil)

        kill(holder.process.processIdentifier, SIGKILL)
        var numbers: [Int] = []
        var flags: [Bool] = []
        for _ in 0..<count {
            guard let message = try await consumer.receive(timeout: .seconds(10)) else { break }
            numbers.append(try message.property("n", as: Int.self) ?? 0)
            flags.append(message.redelivered)
            try await message.acknowledge()
        }
        #expect(numbers.sorted() == Array(1...count))
        #expect(flags.allSatisfy { $0 }, "messages delivered to the dead process must come back flagged redelivered")
        #expect(try await consumer.receiveNoWait() == nil)
    }

    @Test("A durable subscription created in one process catches up in another")
    func aDurableSubscriptionCreatedInOneProcessCatchesUpInAnother() async throws {
        let broker = try openShared()
        defer { broker.close() }
        // Another process creates the subscription after this one opened the store, then ends.
        let first = try start(["subscribe", "news", "durable", "reader", "daily"])
        try await ready(first)
        await stop([first])

        // This process must route to it although it learned of it only through the store.
        try await send(10, to: .topic(Topic("news")), from: broker)
        #expect(broker.durableSubscriptions().map(\.key) == [SubscriptionKey(clientID: "reader", name: "daily")])

        let second = try start(["subscribe", "news", "durable", "reader", "daily"])
        defer { second.killIfRunning() }
        try await ready(second)
        #expect(await waitUntil(timeout: .seconds(30)) { received(second).count >= 10 })
        await stop([second])
        #expect(received(second) == Array(1...10))
    }

    @Test("A non-durable subscriber in another process receives what is published while it is subscribed")
    func aNonDurableSubscriberInAnotherProcessReceivesWhatIsPublished() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let listener = try start(["subscribe", "ticks"])
        defer { listener.killIfRunning() }
        try await ready(listener)
        try await send(10, to: .topic(Topic("ticks")), from: broker, options: .nonPersistent)
        #expect(await waitUntil(timeout: .seconds(30)) { received(listener).count >= 10 })
        await stop([listener])
        #expect(received(listener) == Array(1...10))
        // Its subscription ended with it: the survivors delete it, so nothing is stored for it any more.
        let store = try #require(broker.store as? any SharedMessageStore)
        #expect(await waitUntil(timeout: .seconds(10)) {
            ((try? store.currentSubscriptions()) ?? [SubscriptionRecord(key: .init(clientID: nil, name: "?"), topic: "", selector: nil, noLocal: false, isShared: false)]).isEmpty
        })
    }

    @Test("Messages from producers in two other processes reach a consumer here, each producer's in order")
    func messagesFromProducersInOtherProcessesReachAConsumerHere() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        let consumer = try connection.createSession().createConsumer(for: .queue(Queue("inbox")))
        let producers = try [start(["produce", "inbox", "1", "200"]), start(["produce", "inbox", "1001", "200"])]
        defer { for producer in producers { producer.killIfRunning() } }
        var numbers: [Int] = []
        while numbers.count < 400, let message = try await consumer.receive(timeout: .seconds(30)) {
            numbers.append(try message.property("n", as: Int.self) ?? 0)
        }
        await stop(producers)
        #expect(numbers.count == 400)
        #expect(numbers.filter { $0 < 1000 } == Array(1...200))
        #expect(numbers.filter { $0 > 1000 } == Array(1001...1200))
    }

    @Test("Statistics count what other processes sent")
    func statisticsCountWhatOtherProcessesSent() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let producer = try start(["produce", "counted", "1", "5"])
        defer { producer.killIfRunning() }
        #expect(await waitUntil(timeout: .seconds(30)) { producer.isDone })
        #expect(!producer.lines(startingWith: "SENT").isEmpty, "\(producer.output.text)\(producer.errors.text)")
        let counted = broker.statistics().first { $0.name == "queue://counted" }
        #expect(counted?.depth == 5)
    }

    /// The statistics of `name` as `broker` shows them now.
    func statistics(of name: String, in broker: Broker) -> DestinationStatistics? {
        broker.statistics().first { $0.name == name }
    }

    /// How many members of the group have their lock file (live ones, and dead ones not reaped yet).
    func memberLockFiles() -> Int {
        let members = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/shared/members")) ?? []
        return members.filter { $0.hasSuffix(".lock") }.count
    }

    @Test("Statistics show another process's sends, consumers and messages in flight")
    func statisticsShowAnotherProcesssConsumersAndMessagesInFlight() async throws {
        let broker = try openShared()
        defer { broker.close() }
        let holder = try start(["send-and-hold", "held", "3"])
        defer { holder.killIfRunning() }
        #expect(await waitUntil(timeout: .seconds(30)) { !holder.lines(startingWith: "HOLDING").isEmpty || holder.isDone },
                "\(holder.output.text)\(holder.errors.text)")

        // It publishes its counters within 250 ms of a change.
        let seen = await waitUntil(timeout: .seconds(10)) {
            guard let held = statistics(of: "queue://held", in: broker) else { return false }
            return held.enqueued == 3 && held.consumers == 1 && held.inFlight >= 1 && held.depth == 3 - held.inFlight
        }
        #expect(seen, "\(String(describing: statistics(of: "queue://held", in: broker)))")

        // When it ends without closing the store, its consumer and in-flight messages go with it;
        // what it sent still counts, and its messages wait again.
        holder.closeInput()
        let reaped = await waitUntil(timeout: .seconds(10)) {
            guard holder.isDone, let held = statistics(of: "queue://held", in: broker) else { return false }
            return held.consumers == 0 && held.inFlight == 0 && held.depth == 3
        }
        #expect(reaped, "\(String(describing: statistics(of: "queue://held", in: broker)))")
        #expect(statistics(of: "queue://held", in: broker)?.enqueued == 3)
    }

    @Test("What a killed process counted is kept once it is reaped, and after the survivors reopen")
    func whatAKilledProcessCountedIsKept() async throws {
        let count = 7
        do {
            let broker = try openShared()
            defer { broker.close() }
            let producer = try start(["produce", "kept", "1", "\(count)", "stay"])
            defer { producer.killIfRunning() }
            #expect(await waitUntil(timeout: .seconds(30)) { !producer.lines(startingWith: "SENT").isEmpty || producer.isDone },
                    "\(producer.output.text)\(producer.errors.text)")
            #expect(await waitUntil(timeout: .seconds(10)) { statistics(of: "queue://kept", in: broker)?.enqueued == count },
                    "its published counters never showed here")

            kill(producer.process.processIdentifier, SIGKILL)
            // Reaped: its lock file goes once its counters are kept and its published ones deleted.
            #expect(await waitUntil(timeout: .seconds(10)) { producer.isDone && memberLockFiles() == 1 })
            let kept = statistics(of: "queue://kept", in: broker)
            #expect(kept?.enqueued == count)
            #expect(kept?.depth == count)
        }
        let reopened = try openShared()
        defer { reopened.close() }
        #expect(statistics(of: "queue://kept", in: reopened)?.enqueued == count)
        #expect(statistics(of: "queue://kept", in: reopened)?.depth == count)
    }

    @Test("A store open in single-process mode refuses a process that wants to share it, naming the holder")
    func aSingleProcessStoreRefusesASharingProcess() async throws {
        let broker = try Broker(store: LMDBStore(directory: directory))
        defer { broker.close() }
        let opener = try start(["open"])
        defer { opener.killIfRunning() }
        #expect(await waitUntil(timeout: .seconds(30)) { opener.isDone })
        let error = opener.lines(startingWith: "ERROR").first.map(String.init) ?? "(no error)"
        #expect(error.contains("\(getpid())"), "the error should name this process: \(error)")
        #expect(error.contains("single-process"), "\(error)")
    }
}
}
