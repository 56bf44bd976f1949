@testable import Conveyor
import Synchronization
import Testing

/// JMS 2.0 asynchronous sends (`send(_:completion:)`, JMS 3.1 §7.3): closing and committing wait for
/// them, and one session's completion handlers run one at a time.
@Suite("Asynchronous sends", .timeLimit(.minutes(1)))
struct AsyncSendTests {
    /// Queues `count` asynchronous sends of "0", "1", … and records each outcome.
    private func sendAsynchronously(_ count: Int, with producer: MessageProducer, into outcomes: Recorder<Result<String, ConveyorError>>) {
        for index in 0..<count {
            producer.send(.text("\(index)")) { result in
                outcomes.append(result.map { $0.text ?? "" })
            }
        }
    }

    private func texts(_ outcomes: Recorder<Result<String, ConveyorError>>) -> [String?] {
        outcomes.all.map { try? $0.get() }
    }

    @Test(arguments: StoreKind.allCases)
    func closingTheSessionSendsWhatIsQueuedFirst(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("async-close-session"))
        let session = try fixture.connection.createSession()
        let outcomes = Recorder<Result<String, ConveyorError>>()
        sendAsynchronously(200, with: try session.createProducer(for: queue), into: outcomes)
        session.close()
        #expect(outcomes.count == 200, "close returned before every completion handler had")
        #expect(texts(outcomes) == (0..<200).map { "\($0)" }, "every queued send went out, in order")
        let received = try await fixture.connection.createSession().createConsumer(for: queue).receive(200).map(\.text)
        #expect(received == (0..<200).map { "\($0)" })
    }

    @Test(arguments: StoreKind.allCases)
    func closingTheProducerOrTheConnectionSendsWhatIsQueuedFirst(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("async-close-producer"))
        let producerOutcomes = Recorder<Result<String, ConveyorError>>()
        let producer = try fixture.connection.createSession().createProducer(for: queue)
        sendAsynchronously(100, with: producer, into: producerOutcomes)
        producer.close()
        #expect(texts(producerOutcomes) == (0..<100).map { "\($0)" })

        let connection = try ConnectionFactory(broker: fixture.broker).createConnection()
        let connectionOutcomes = Recorder<Result<String, ConveyorError>>()
        sendAsynchronously(100, with: try connection.createSession().createProducer(for: queue), into: connectionOutcomes)
        connection.close()
        #expect(texts(connectionOutcomes) == (0..<100).map { "\($0)" })
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        #expect(try await consumer.receive(200).count == 200)
        #expect(try await consumer.receiveNoWait() == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func commitIncludesTheAsynchronousSendsQueuedBeforeIt(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("async-commit"))
        let session = try fixture.connection.createSession(.transacted)
        let outcomes = Recorder<Result<String, ConveyorError>>()
        let producer = try session.createProducer(for: queue)
        sendAsynchronously(300, with: producer, into: outcomes)
        try await session.commit()
        #expect(outcomes.count == 300, "commit waited for every completion handler")
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        let received = try await consumer.receive(300, timeout: .seconds(2)).map(\.text)
        #expect(received == (0..<300).map { "\($0)" }, "all 300 were in the committed transaction")

        sendAsynchronously(50, with: producer, into: outcomes)
        try await session.rollback()
        #expect(outcomes.count == 350, "rollback waited for every completion handler")
        try await session.commit()
        #expect(try await consumer.receive(timeout: .milliseconds(100)) == nil, "the 50 were rolled back, not left for the next commit")
    }

    @Test(arguments: StoreKind.allCases)
    func oneSessionsCompletionHandlersRunOneAtATime(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let producers = try (0..<3).map { try session.createProducer(for: .queue(Queue("async-serial-\($0)"))) }
        let running = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        for _ in 0..<20 {
            for producer in producers {
                producer.send(.text("x")) { _ in
                    if running.add(1, ordering: .sequentiallyConsistent).newValue > 1 { overlaps.add(1, ordering: .relaxed) }
                    // Stay inside the handler for a moment, so that a concurrent one would overlap.
                    let until = ContinuousClock.now + .milliseconds(1)
                    while ContinuousClock.now < until {}
                    running.subtract(1, ordering: .sequentiallyConsistent)
                    done.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(await waitUntil { done.load(ordering: .relaxed) == 60 })
        #expect(overlaps.load(ordering: .relaxed) == 0)
        session.close()
    }

    @Test(arguments: StoreKind.allCases)
    func aHandlerThatClosesItsOwnSessionDoesNotHang(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession()
        let producer = try session.createProducer(for: .queue(Queue("async-close-inside")))
        let outcomes = Recorder<Result<String, ConveyorError>>()
        producer.send(.text("first")) { result in
            outcomes.append(result.map { $0.text ?? "" })
            session.close()
        }
        sendAsynchronously(5, with: producer, into: outcomes)
        #expect(await outcomes.waitForCount(6), "the handler's close blocked the sends behind it")
        #expect(try outcomes.all[0].get() == "first")
        #expect(session.isClosed)
        for outcome in outcomes.all.dropFirst() {
            if case .failure(let error) = outcome { #expect(error.code == .illegalState) }
        }
    }
}
