import Conveyor
import Foundation

/// M1 backlog memory: queue persistent 1 KiB messages with no consumer and report the process's
/// anonymous resident memory (`RssAnon` in `/proc/self/status`). The rate is the queueing rate.
///
/// On the memory store the backlog necessarily lives in the heap; on disk-backed stores it must not.
public struct BacklogMemoryWorkload: Workload {
    /// ``WorkloadID/m1``.
    public var id: WorkloadID { .m1 }
    /// Messages queued (1,000,000 by default).
    public var messages: Int
    /// Sends per transaction (1,000).
    public var batch: Int
    /// Body size in bytes (1 KiB by default).
    public var bodySize: Int
    /// `msg/s` (queueing).
    public var unit: String { "msg/s" }

    /// Creates the workload.
    /// - Parameters:
    ///   - messages: Messages to queue.
    ///   - batch: Sends per transaction.
    ///   - bodySize: Body size in bytes.
    public init(messages: Int = 1_000_000, batch: Int = 1_000, bodySize: Int = 1_024) {
        self.messages = messages
        self.batch = batch
        self.bodySize = bodySize
    }

    /// Runs it.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        let broker = try Broker(store: location.open())
        defer { broker.close() }
        let session = try ConnectionFactory(broker: broker).createConnection().createSession(.transacted)
        let producer = try session.createProducer(for: .queue(Queue("conveyor.bench.m1")))
        let start = ContinuousClock.now
        // Distinct bodies, as a real backlog has: one shared body would hide the cost of holding it.
        let template = Data.random(count: bodySize)
        var inBatch = 0
        for index in 0..<messages {
            var body = template
            withUnsafeBytes(of: UInt64(index)) { body.replaceSubrange(0..<min(8, bodySize), with: $0.prefix(bodySize)) }
            try await producer.send(.bytes(body))
            inBatch += 1
            if inBatch == batch {
                try await session.commit()
                inBatch = 0
            }
        }
        if inBatch > 0 { try await session.commit() }
        let elapsed = ContinuousClock.now - start
        return WorkloadMeasurement(count: messages, elapsed: elapsed, rssAnonMiB: ProcessMemory.anonymousResidentMiB())
    }
}

/// Reads the process's memory figures from `/proc/self/status` (Linux).
enum ProcessMemory {
    /// `RssAnon` in MiB, or `nil` where `/proc` is unavailable.
    static func anonymousResidentMiB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("RssAnon:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kibibytes = Double(fields[1]) { return kibibytes / 1024 }
        }
        return nil
    }
}
