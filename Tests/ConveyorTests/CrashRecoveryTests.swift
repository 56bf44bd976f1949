@testable import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash safety with real processes: `ConveyorCrashWorker` (Sources/ConveyorCrashWorker) produces and
/// consumes on a store in sync mode (an LMDB store, or a FileStore with small segments so that they
/// roll and compact) and is killed with SIGKILL at random moments, again and again on the same
/// directory. Its journal (one line per operation, written after the operation returned) is checked
/// as it goes and against what the store holds at the end.
///
/// A kill can land after an operation returned and before its line was written, so the journal is a
/// lower bound: a `SENT` line proves a message committed, an `ACKED` line proves it removed. The worker
/// writes `SENDING` and `ACKING` lines before it commits, so every message that may exist has a
/// `SENDING` line, and every message that may have been removed has an `ACKING` line.
///
/// Every FileStore reopen after a kill already meets a tail of zeros (the segment's preallocation)
/// after the last record. After the final kill the FileStore test also tears the journal's tail as
/// a write cut short would: half a record, with the file ending inside it. Opening must cut it off
/// and lose nothing committed.
extension HeavyTests {
@Suite("Crash recovery with real processes", .timeLimit(.minutes(3)))
struct CrashRecoveryTests {
    static let cycles = 12
    static let killDelay = 50...400  // milliseconds after the worker first reported work
    static let queue = Destination.queue(Queue("crash-test"))

    @Test("Sync mode survives repeated SIGKILL of a producing and consuming process", arguments: [StoreKind.lmdb, .file])
    func syncModeSurvivesRepeatedSIGKILLOfAProducingAndConsumingProcess(store kind: StoreKind) async throws {
        guard let worker = CrashWorker.locateOrRecordIssue() else { return }
        let started = ContinuousClock.now
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-crash-\(kind.rawValue)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        guard let (journal, delays) = await Self.killRepeatedly(worker, store: kind, directory: directory, cycles: Self.cycles) else {
            return
        }

        var torn: TornTail?
        var segmentFiles = 0
        if kind == .file {
            segmentFiles = TornTail.segmentNames(in: directory).count
            torn = try TornTail.tear(directory)
            // Nothing to tear when the final kill landed while the store was starting a segment,
            // before its header was written: the reopen below must cope with that file instead.
            #expect(torn != nil || TornTail.lastSegmentHasNoHeader(in: directory),
                    "the journal has a last segment whose tail can be torn")
        }

        // Reopen in this process and compare what the store holds with the journal.
        let broker = try Self.reopen(kind, at: directory)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        let session = try connection.createSession(.clientAcknowledge)
        let depth = broker.statistics(for: Queue("crash-test"))?.depth ?? 0
        let present = try await Self.drain(try session.createConsumer(for: Self.queue), depth: depth)
        let deadLetters = try session.createConsumer(for: .queue(Queue("DLQ.crash-test")))
        #expect(try await deadLetters.receiveNoWait() == nil, "nothing is dead-lettered (unlimited redeliveries)")

        let consumed = journal.consumption()
        Self.record(
            journal.storeProblems(present).map { "\(kind) after the final kill: \($0) (kill delays \(delays) ms)" },
            what: "problems in the final store")
        #expect(!journal.sent.isEmpty && !consumed.acked.isEmpty, "the worker sent and acknowledged messages")

        // The torn record is gone: where it began, the journal now holds a whole record or ends.
        broker.close()
        if let torn { try torn.expectCutOff() }

        let seconds = (ContinuousClock.now - started).components.seconds
        let files = kind == .file ? "; \(segmentFiles) segment files at the end, tail torn \(torn?.description ?? "-")" : ""
        print("""
            CrashRecoveryTests[\(kind)]: \(Self.cycles) SIGKILL cycles (delays \(delays) ms) in ~\(seconds) s; \
            \(journal.sent.count) messages committed, \(consumed.acked.count) acknowledged, \
            \(consumed.deliveries) deliveries (\(consumed.redeliveries) redelivered, \
            \(consumed.redeliveriesAfterRestart) after a restart); \(present.count) left in the store\(files)
            """)
    }

    /// Opens the store the worker left in `directory` with a broker in this process (sync mode,
    /// unlimited redeliveries, as the worker's).
    static func reopen(_ kind: StoreKind, at directory: URL) throws -> Broker {
        var configuration = BrokerConfiguration()
        configuration.defaultPolicy.redelivery = RedeliveryPolicy(maximumRedeliveries: -1)
        let store: any MessageStore =
            switch kind {
            case .file: FileStore(directory: directory, options: .init(durability: .sync))
            default: LMDBStore(directory: directory, options: .init(durability: .sync))
            }
        return try Broker(store: store, configuration: configuration)
    }

    /// Receives every message `consumer` has, without acknowledging any, by message number (every
    /// copy of each). Waits up to 10 s for each of the `depth` messages the store reported, then
    /// half a second for any beyond them; records an issue if the count differs from `depth`.
    static func drain(
        _ consumer: MessageConsumer, depth: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [Int: [Message]] {
        var present: [Int: [Message]] = [:]
        var received = 0
        while let message = try await consumer.receive(timeout: received < depth ? .seconds(10) : .milliseconds(500)) {
            received += 1
            guard let n = try message.property("n", as: Int.self) else {
                Issue.record("a stored message has no property n: \(message.text ?? "-")", sourceLocation: sourceLocation)
                continue
            }
            present[n, default: []].append(message)
        }
        #expect(
            received == depth, "the consumer receives as many messages as the store reported waiting",
            sourceLocation: sourceLocation)
        return present
    }

    /// Records the first 20 of `failures` as issues at the caller, and one more saying how many
    /// there were in all if there were more.
    /// Runs `cycles` kill cycles of the worker (in `mode`) on `directory` and records what went
    /// wrong as issues: a cycle that failed, problems in the journal, a cycle that did no work.
    /// - Returns: The journal and the kill delays, or `nil` if a cycle failed.
    static func killRepeatedly(
        _ worker: URL, mode: String? = nil, store kind: StoreKind, directory: URL, cycles: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> (journal: Journal, delays: [Int])? {
        let run = await CrashWorker.runCycles(
            worker, mode: mode, store: kind, directory: directory.path, cycles: cycles, killDelay: killDelay)
        if let failure = run.failure {
            Issue.record("\(kind) \(failure)", sourceLocation: sourceLocation)
            return nil
        }
        record(run.journal.problems.map { "\(kind): \($0) (kill delays \(run.delays) ms)" }, what: "journal problems",
               sourceLocation: sourceLocation)
        #expect(run.journal.cyclesWithWork == cycles, "every cycle did some work before its kill", sourceLocation: sourceLocation)
        return (run.journal, run.delays)
    }

    static func record(_ failures: [String], what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for failure in failures.prefix(20) { Issue.record("\(failure)", sourceLocation: sourceLocation) }
        #expect(failures.count <= 20, "\(failures.count) \(what) in all", sourceLocation: sourceLocation)
    }
}
}

// MARK: - Tearing the FileStore's tail

/// A write cut short at the end of the FileStore's last segment, made by hand after the final kill:
/// the first half of a copy of the last record (its group start set to where it now begins, as a
/// new write's would be), with the file ending inside it.
struct TornTail: CustomStringConvertible {
    let path: String
    /// Where the valid records end and the torn one begins.
    let validEnd: Int
    let tornBytes: [UInt8]

    var description: String { "at offset \(validEnd) of \(URL(fileURLWithPath: path).lastPathComponent) (\(tornBytes.count) bytes)" }

    /// Whether the last segment file is shorter than a segment header (created, not yet written).
    static func lastSegmentHasNoHeader(in directory: URL) -> Bool {
        guard let name = segmentNames(in: directory).last,
              let size = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? NSNumber
        else { return false }
        return size.intValue < JournalSegment.headerSize
    }

    static func segmentNames(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { JournalSegment.number(inFileName: $0) != nil }
            .sorted()
    }

    /// The offset where the valid records of a segment file end, and the last of them.
    static func validRecords(_ bytes: [UInt8]) -> (end: Int, last: Range<Int>?) {
        bytes.withUnsafeBytes { raw in
            var offset = JournalSegment.headerSize
            var last: Range<Int>?
            while let header = JournalRecord.validRecord(in: raw, at: offset) {
                let end = offset + JournalRecord.headerSize + header.length
                last = offset..<end
                offset = end
            }
            return (min(offset, bytes.count), last)
        }
    }

    /// Tears the tail of the last segment; `nil` if there is no segment with a header.
    static func tear(_ directory: URL) throws -> TornTail? {
        guard let name = segmentNames(in: directory).last else { return nil }
        let path = directory.appendingPathComponent(name).path
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count >= JournalSegment.headerSize else { return nil }
        let (validEnd, last) = validRecords(bytes)
        var torn: [UInt8]
        if let last {
            torn = Array(bytes[last])
        } else {
            // No record in this segment yet: make one up (its CRC is wrong anyway once cut).
            torn = [UInt8](repeating: 0, count: JournalRecord.headerSize + 64)
            withUnsafeBytes(of: JournalRecord.magic.littleEndian) { torn.replaceSubrange(0..<4, with: $0) }
            withUnsafeBytes(of: UInt32(64).littleEndian) { torn.replaceSubrange(4..<8, with: $0) }
            for i in JournalRecord.headerSize..<torn.count { torn[i] = UInt8(truncatingIfNeeded: i * 37) }
        }
        withUnsafeBytes(of: UInt64(validEnd).littleEndian) { torn.replaceSubrange(8..<16, with: $0) }
        torn = Array(torn.prefix(min(torn.count - 1, max(JournalRecord.headerSize + 4, torn.count / 2))))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(validEnd))
        try handle.seek(toOffset: UInt64(validEnd))
        try handle.write(contentsOf: torn)
        try handle.synchronize()
        return TornTail(path: path, validEnd: validEnd, tornBytes: torn)
    }

    /// After the store opened and closed: the records before the torn one are intact, and the
    /// segment holds only whole records (the torn bytes were cut off, or written over by records
    /// since).
    func expectCutOff() throws {
        guard FileManager.default.fileExists(atPath: path) else { return }  // compacted away
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let (end, _) = Self.validRecords(bytes)
        #expect(end >= validEnd, "the records before the torn tail are intact (valid up to \(end), was \(validEnd))")
        #expect(
            end == bytes.count || bytes[end...].allSatisfy { $0 == 0 },
            "after the store reopened and closed, the segment holds only whole records (valid up to \(end) of \(bytes.count))")
    }
}
