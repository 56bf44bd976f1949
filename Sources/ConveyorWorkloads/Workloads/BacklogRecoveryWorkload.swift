import Conveyor
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// W6 backlog-recovery: queue persistent messages with no consumer, close the broker, then time
/// (a) opening a new broker on the same store and (b) draining everything in transactions of 100.
/// The rate is the drain rate; ``WorkloadMeasurement/openSeconds`` is (a).
///
/// On a disk store, and once a program has set ``writer``, a run then also times opening after a
/// crash: a child process queues the same backlog, is killed with SIGKILL, and a broker is opened
/// on what it left (``WorkloadMeasurement/openAfterKillSeconds``).
public struct BacklogRecoveryWorkload: Workload {
    /// ``WorkloadID/w6``.
    public var id: WorkloadID { .w6 }
    /// Messages queued (200,000 by default).
    public var messages: Int
    /// Operations per transaction (100).
    public var batch: Int
    /// Body size in bytes (128 by default).
    public var bodySize: Int
    /// `msg/s` (drain).
    public var unit: String { "msg/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to queue.
    ///   - batch: Operations per transaction.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 200_000, batch: Int = 100, bodySize: Int = 128) {
        self.messages = messages
        self.batch = batch
        self.bodySize = bodySize
    }

    private static let launcher = Mutex<PeerLauncher?>(nil)

    /// How to start the process that queues the backlog and is killed; the phase is skipped
    /// while it is `nil`. The process gets the arguments `<store-name> <directory> <count>` after
    /// the launcher's own, runs ``fillAndWait(store:directory:count:)``, and is killed once it
    /// printed `FILLED`.
    public static var writer: PeerLauncher? {
        get { launcher.withLock { $0 } }
        set { launcher.withLock { $0 = newValue } }
    }

    /// Runs it.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let queue = Destination.queue(Queue(Self.queueName))
        do {
            let broker = try Broker(store: location.open())
            defer { broker.close() }
            let session = try ConnectionFactory(broker: broker).createConnection().createSession(.transacted)
            let producer = try session.createProducer(for: queue)
            try await sendInTransactions(
                .bytes(Data.random(count: bodySize)), count: messages, batch: batch, producer: producer, session: session)
        }
        var measurement = try await openAndDrain(at: location)
        if let writer = Self.writer, !location.keepsDataInInstance {
            measurement.openAfterKillSeconds = try await openAfterKill(at: location, writer: writer)
        }
        return measurement
    }

    /// Times opening a broker on the backlog and draining it.
    private func openAndDrain(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let opening = ContinuousClock.now
        let store = try location.open()
        let broker = try Broker(store: store)
        let openTime = ContinuousClock.now - opening
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let session = try connection.createSession(.transacted)
        let consumer = try session.createConsumer(for: .queue(Queue(Self.queueName)))
        try connection.start()
        let syncedWrites = SyncedWriteProbe(store)
        let start = ContinuousClock.now
        try await receiveInTransactions(count: messages, batch: batch, consumer: consumer, session: session, workload: .w6)
        var measurement = WorkloadMeasurement(count: messages, elapsed: .now - start, openSeconds: openTime.seconds)
        measurement.syncedWritesPerThousand = syncedWrites.perThousand(of: messages)
        return measurement
    }

    static let queueName = "conveyor.bench.w6"

    /// Has a child process queue the backlog on the (drained) store, kills it, and times opening a
    /// broker on what it left; checks every message is there.
    private func openAfterKill(at location: StoreLocation, writer: PeerLauncher) async throws -> Double {
        let child = Process()
        child.executableURL = writer.executable
        child.arguments = writer.arguments + [location.storeName, location.directory.path, "\(messages)"]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        defer { if child.isRunning { child.terminate() } }
        let lines = LineReader(output.fileHandleForReading)
        guard await lines.next(before: .now + .seconds(600)) == "FILLED" else {
            throw WorkloadError(.incomplete, "W6: the process queueing the backlog to kill did not finish")
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()

        let opening = ContinuousClock.now
        let broker = try Broker(store: location.open())
        let openTime = ContinuousClock.now - opening
        defer { broker.close() }
        let depth = broker.statistics(for: Queue(Self.queueName))?.depth ?? 0
        guard depth == messages else {
            throw WorkloadError(.incomplete, "W6: after the kill the store holds \(depth) of the \(messages) queued messages")
        }
        return openTime.seconds
    }

    /// The process ``writer`` starts: opens the store named `store` (a ``WorkloadStore`` name) in
    /// `directory`, queues `count` persistent 128-byte messages in transactions of 100, prints `FILLED` and
    /// waits, with the store open, to be killed.
    /// - Throws: ``WorkloadError/Code/invalidParameter`` for an unknown store; the broker's errors.
    public static func fillAndWait(store: String, directory: String, count: Int) async throws -> Never {
        guard let kind = WorkloadStore.named(store), !kind.keepsDataInInstance else {
            throw WorkloadError(.invalidParameter, "'\(store)' is not a disk store")
        }
        let broker = try Broker(store: kind.makeStore(URL(fileURLWithPath: directory)))
        let session = try ConnectionFactory(broker: broker).createConnection().createSession(.transacted)
        let producer = try session.createProducer(for: .queue(Queue(queueName)))
        try await sendInTransactions(.bytes(Data.random(count: 128)), count: count, batch: 100, producer: producer, session: session)
        writeLine("FILLED")
        while true { pause() }
    }
}
