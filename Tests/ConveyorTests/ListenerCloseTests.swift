@testable import Conveyor
import Dispatch
import Foundation
import Synchronization
import Testing

extension HeavyTests {
/// `close()` and `stop()` block until the message listeners in progress have returned (Jakarta
/// Messaging 3.1, `Connection.stop`, `Connection.close`, `Session.close`, `MessageConsumer.close`),
/// and called from a listener of their own they neither deadlock nor wait for themselves.
///
/// A listener is held in progress by a ``Gate`` that another thread (not the cooperative pool) opens
/// once the close or stop under test is seen waiting for it; events are recorded in order. These tests block
/// cooperative threads on purpose (that is what the blocking `close()` does), hence `HeavyTests`.
@Suite("Close and stop wait for listeners in progress", .timeLimit(.minutes(1)))
struct ListenerCloseTests {
    @Test(arguments: StoreKind.allCases)
    func connectionCloseWaitsForTheListenerInProgress(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let held = try await HeldListener(fixture.connection, queue: "close-connection")
        held.gate.open(whenSomeoneWaitsFor: held.session)
        fixture.connection.close()
        held.events.append("close returned")
        #expect(held.events.all == ["listener started", "listener finished", "close returned"])
        // And its message was acknowledged (auto-acknowledge) before close returned.
        let statistics = try #require(fixture.broker.statistics(for: Queue("close-connection")))
        #expect(statistics.dequeued == 1 && statistics.inFlight == 0)
    }

    @Test func sessionCloseWaitsForTheListenerInProgress() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let held = try await HeldListener(fixture.connection, queue: "close-session")
        held.gate.open(whenSomeoneWaitsFor: held.session)
        held.session.close()
        held.events.append("close returned")
        #expect(held.events.all == ["listener started", "listener finished", "close returned"])
    }

    @Test func consumerCloseWaitsForItsListenerInProgress() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let held = try await HeldListener(fixture.connection, queue: "close-consumer")
        held.gate.open(whenSomeoneWaitsFor: held.session)
        held.consumer.close()
        held.events.append("close returned")
        #expect(held.events.all == ["listener started", "listener finished", "close returned"])
    }

    @Test func stopWaitsForTheListenerInProgressAndNoneRunsUntilStart() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let held = try await HeldListener(fixture.connection, queue: "stop")
        held.gate.open(whenSomeoneWaitsFor: held.session)
        try fixture.connection.stop()
        held.events.append("stop returned")
        #expect(held.events.all == ["listener started", "listener finished", "stop returned"])

        try await held.session.createProducer(for: .queue(Queue("stop"))).send(.text("after stop"))
        #expect(await held.events.waitForCount(4, timeout: .milliseconds(200)) == false, "stopped: no listener call")
        try fixture.connection.start()
        #expect(await held.events.waitForCount(5))
        #expect(held.events.all.suffix(2) == ["listener started", "listener finished"])
    }

    @Test func sessionCloseFromItsOwnListenerReturnsAndAnotherCloseStillWaits() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("close-session-inside"))
        let events = Recorder<String>()
        let gate = Gate()
        let session = try fixture.connection.createSession()
        let consumer = try session.createConsumer(for: queue)
        try consumer.setMessageListener { [session] _ in
            session.close()
            events.append("closed from inside")
            await gate.wait()
            events.append("listener finished")
        }
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2, options: .nonPersistent)
        #expect(await events.waitForCount(1), "close() from its own listener returns")
        #expect(session.isClosed && consumer.isClosed)
        gate.open(whenSomeoneWaitsFor: session)
        session.close()  // from outside: waits for the listener still in progress
        events.append("close returned")
        #expect(events.all == ["closed from inside", "listener finished", "close returned"])
        // No second call; the first message was acknowledged when the listener returned, the second
        // went back to the queue.
        let statistics = try #require(fixture.broker.statistics(for: Queue("close-session-inside")))
        #expect(statistics.dequeued == 1 && statistics.depth == 1)
    }

    @Test func consumerCloseFromItsOwnListenerReturnsAndAnotherCloseStillWaits() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("close-consumer-inside"))
        let events = Recorder<String>()
        let gate = Gate()
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        try consumer.setMessageListener { [consumer] _ in
            consumer.close()
            events.append("closed from inside")
            await gate.wait()
            events.append("listener finished")
        }
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2, options: .nonPersistent)
        #expect(await events.waitForCount(1), "close() from its own listener returns")
        gate.open(whenSomeoneWaitsFor: consumer.session)
        consumer.close()
        events.append("close returned")
        #expect(events.all == ["closed from inside", "listener finished", "close returned"])
    }

    @Test func connectionCloseFromAListenerWaitsForTheOtherSessionsOnly() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let other = try await HeldListener(fixture.connection, queue: "close-connection-other")
        let queue = Destination.queue(Queue("close-connection-inside"))
        let closer = try fixture.connection.createSession().createConsumer(for: queue)
        try closer.setMessageListener { [connection = fixture.connection, events = other.events] _ in
            events.append("closing from inside")
            connection.close()
            events.append("close returned")
        }
        other.gate.open(whenSomeoneWaitsFor: other.session)
        try await other.session.createProducer(for: queue).send(.text("close"))
        #expect(await other.events.waitForCount(4), "close() from a listener of its own connection returns")
        #expect(other.events.all == ["listener started", "closing from inside", "listener finished", "close returned"])
        #expect(fixture.connection.isClosed)
    }

    @Test func stopFromAListenerOfItsOwnConnectionThrowsIllegalState() async throws {
        let fixture = try Fixture(.memory)
        defer { fixture.close() }
        let queue = Destination.queue(Queue("stop-inside"))
        let outcomes = Recorder<String>()
        let consumer = try fixture.connection.createSession().createConsumer(for: queue)
        try consumer.setMessageListener { [connection = fixture.connection] _ in
            do {
                try connection.stop()
                outcomes.append("stopped")
            } catch let error as ConveyorError {
                outcomes.append(error.code == .illegalState && !error.message.isEmpty ? "illegalState" : "\(error)")
            } catch {
                outcomes.append("\(error)")
            }
        }
        try await fixture.connection.createSession().createProducer(for: queue).sendTexts(2, options: .nonPersistent)
        #expect(await outcomes.waitForCount(2), "stop() threw rather than deadlock, and delivery went on")
        #expect(outcomes.all == ["illegalState", "illegalState"])
        #expect(fixture.connection.isStarted)
    }

    /// Eight listeners in progress and eight concurrent closes from tasks, on a pool of (say) two
    /// threads: the closes block pool threads, so this finishes only if listeners do not need the pool.
    @Test func closingManySessionsConcurrentlyDoesNotStarveTheListeners() async throws {
        let fixture = try Fixture(.memory)
        var helds: [HeldListener] = []
        for index in 0..<8 {
            helds.append(try await HeldListener(fixture.connection, queue: "starve-\(index)"))
        }
        let closed = DispatchSemaphore(value: 0)
        for held in helds {
            held.gate.open(whenSomeoneWaitsFor: held.session)
            Task.detached {
                held.session.close()
                held.events.append("close returned")
                closed.signal()
            }
        }
        // A thread-blocking wait with a deadline: an async one could not run if the pool starved.
        let finished = waitForSignals(closed, count: helds.count, timeout: .seconds(10))
        #expect(finished, "every close returned")
        for held in helds {
            #expect(held.events.all == ["listener started", "listener finished", "close returned"])
        }
        // Starved, closing the broker would block too: leave it, so that the test fails, not hangs.
        if finished { fixture.close() }
    }
}
}

/// A session whose listener is in progress, held on a ``Gate``: it records "listener started", waits
/// (suspended, not blocking) for the gate, then records "listener finished".
private struct HeldListener: Sendable {
    let session: Session
    let consumer: MessageConsumer
    let events = Recorder<String>()
    let gate = Gate()

    /// Sets up the listener, sends it a message and waits until it is in progress.
    init(_ connection: Connection, queue name: String) async throws {
        let queue = Destination.queue(Queue(name))
        session = try connection.createSession()
        consumer = try session.createConsumer(for: queue)
        try consumer.setMessageListener { [events, gate] _ in
            events.append("listener started")
            await gate.wait()
            events.append("listener finished")
        }
        let producerSession = try connection.createSession()
        try await producerSession.createProducer(for: queue).send(.text("hold"))
        producerSession.close()
        let events = self.events
        try #require(await events.waitForCount(1), "the listener started")
    }
}

/// A one-way door: tasks wait (suspended) until it opens; it opens from any thread.
private final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Opens once a `close()` or `stop()` is blocked waiting for `session`'s listener in progress
    /// (or after 10 s, when the test fails on its own), watched from a thread of its own (not the
    /// cooperative pool, which the blocked call may be holding).
    func open(whenSomeoneWaitsFor session: Session) {
        Thread.detachNewThread { [self] in
            let deadline = ContinuousClock.now + .seconds(10)
            while !session.hasListenerCallWaiters, ContinuousClock.now < deadline {
                usleep(200)  // deliberate: polls a condition with a deadline, on a thread (the pool may be blocked)
            }
            open()
        }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = state.withLock { state in
                if state.isOpen { return false }
                state.waiters.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
    }
}

/// Blocks the calling thread until `semaphore` was signalled `count` times or `timeout` passed.
private func waitForSignals(_ semaphore: DispatchSemaphore, count: Int, timeout: Duration) -> Bool {
    let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds) * 1000)
    for _ in 0..<count where semaphore.wait(timeout: deadline) == .timedOut { return false }
    return true
}
