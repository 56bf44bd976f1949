import Conveyor
import Dispatch
import Foundation
import Synchronization

/// X1 cross-process: a producer in this process and a consumer in a child process, on one LMDB
/// store opened by both with `sharing: .processes`.
///
/// Two phases, persistent messages, auto-acknowledge, one send at a time:
/// 1. latency: ``pacedMessages`` messages, one every ``pace``, so that the consumer is waiting for
///    each one; the one-way latency (from the start of the send here to the receive there, on the
///    system-wide monotonic clock) gives the percentiles;
/// 2. rate: ``messages`` messages as fast as one producer sends them; the rate is messages over the
///    time from the first send to the last receive.
///
/// The child is this program started again through ``peer`` (the `conveyor` CLI registers its
/// hidden `bench-peer` command); it runs ``runPeer(directory:count:)``.
public struct CrossProcessWorkload: Workload {
    /// ``WorkloadID/x1``.
    public var id: WorkloadID { .x1 }
    /// Messages of the rate phase (5,000 by default).
    public var messages: Int
    /// Messages of the latency phase (500 by default).
    public var pacedMessages: Int
    /// The gap between sends in the latency phase (2 ms by default).
    public var pace: Duration
    /// How long a run may take before it fails with ``WorkloadError/Code/timedOut``.
    public var timeLimit: Duration
    /// `msg/s`.
    public var unit: String { "msg/s" }

    private static let launcher = Mutex<PeerLauncher?>(nil)

    /// How the consumer process is started; X1 cannot run until a program sets it.
    public static var peer: PeerLauncher? {
        get { launcher.withLock { $0 } }
        set { launcher.withLock { $0 = newValue } }
    }

    /// Creates the workload; the defaults are the standard X1.
    /// - Parameters:
    ///   - messages: Messages of the rate phase.
    ///   - pacedMessages: Messages of the latency phase.
    ///   - pace: The gap between sends of the latency phase.
    ///   - timeLimit: The longest a run may take.
    public init(messages: Int = 5_000, pacedMessages: Int = 500, pace: Duration = .milliseconds(2), timeLimit: Duration = .seconds(300)) {
        self.messages = messages
        self.pacedMessages = pacedMessages
        self.pace = pace
        self.timeLimit = timeLimit
    }

    /// Runs X1 once.
    /// - Parameter location: A fresh store directory; its store must be able to share (LMDB).
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        guard let peer = Self.peer else {
            throw WorkloadError(.notImplemented, "X1 needs a second process; run it with `conveyor bench --workload X1`")
        }
        let broker = try Broker(store: location.openShared())
        defer { broker.close() }
        let child = Process()
        child.executableURL = peer.executable
        child.arguments = peer.arguments + [location.directory.path, "\(pacedMessages + messages)"]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        defer { if child.isRunning { child.terminate() } }
        let lines = LineReader(output.fileHandleForReading)
        guard await lines.next() == "READY" else {
            throw WorkloadError(.incomplete, "X1: the consumer process did not start")
        }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let producer = try connection.createSession().createProducer(for: .queue(Queue(Self.queueName)))
        let body = Message.bytes(Data(count: 128))
        for _ in 0..<pacedMessages {
            _ = try await producer.send(try body.with(Self.sentProperty, Int(DispatchTime.now().uptimeNanoseconds)).with(Self.pacedProperty, true))
            try await Task.sleep(for: pace)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<messages {
            _ = try await producer.send(try body.with(Self.sentProperty, Int(DispatchTime.now().uptimeNanoseconds)))
        }
        let deadline = ContinuousClock.now + timeLimit
        let result = await lines.next(before: deadline)
        let fields = result?.split(separator: " ").compactMap { UInt64($0) } ?? []
        guard let result, result.hasPrefix("DONE "), fields.count == 4 else {
            throw WorkloadError(.incomplete, "X1: the consumer process reported \(result ?? "nothing")")
        }
        let elapsed = Duration.nanoseconds(Int64(fields[0]) - Int64(start))
        let latency = LatencyPercentiles(p50: Double(fields[1]) / 1_000, p99: Double(fields[2]) / 1_000, p999: Double(fields[3]) / 1_000)
        return WorkloadMeasurement(count: messages, elapsed: elapsed, latency: latency)
    }

    static let queueName = "conveyor.bench.x1"
    static let sentProperty = "sentNanos"
    static let pacedProperty = "paced"

    /// The consumer process of X1: opens the shared store in `directory`, prints `READY`, receives
    /// `count` messages and prints `DONE <last-receive-ns> <p50-ns> <p99-ns> <p999-ns>` (the
    /// percentiles of the paced messages' one-way latencies).
    /// - Throws: The ``ConveyorError`` of a failed broker call.
    public static func runPeer(directory: String, count: Int, store: WorkloadStore = .lmdb) async throws {
        guard let makeShared = store.makeSharedStore else {
            throw WorkloadError(.invalidParameter, "the \(store.name) store cannot be shared between processes")
        }
        let broker = try Broker(store: makeShared(URL(fileURLWithPath: directory)))
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let consumer = try connection.createSession().createConsumer(for: .queue(Queue(queueName)))
        try connection.start()
        writeLine("READY")
        var latencies: [Duration] = []
        var last: UInt64 = 0
        for _ in 0..<count {
            guard let message = try await consumer.receive() else { break }
            last = DispatchTime.now().uptimeNanoseconds
            if try message.property(pacedProperty, as: Bool.self) == true, let sent = try message.property(sentProperty, as: Int.self) {
                latencies.append(.nanoseconds(Int64(last) - Int64(sent)))
            }
        }
        let percentiles = latencies.isEmpty ? LatencyPercentiles(p50: 0, p99: 0, p999: 0) : LatencyPercentiles(samples: latencies)
        writeLine("DONE \(last) \(UInt64(percentiles.p50 * 1_000)) \(UInt64(percentiles.p99 * 1_000)) \(UInt64(percentiles.p999 * 1_000))")
    }
}
