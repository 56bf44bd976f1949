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
        guard let worker = CrashWorker.locate() else {
            Issue.record("""
                the ConveyorCrashWorker executable was not found next to the test bundle \
                (\(CommandLine.arguments[0])) nor in .build/debug; build it with `swift build` \
                (the test target depends on it, so `swift test` builds it)
                """)
            return
        }
        let started = ContinuousClock.now
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-crash-\(kind.rawValue)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        var journal = Journal()
        var delays: [Int] = []
        for cycle in 1...Self.cycles {
            let delay = Int.random(in: Self.killDelay)
            delays.append(delay)
            let run = await CrashWorker.runAndKill(
                worker, store: kind, directory: directory.path, first: journal.highestNamed + 1,
                killAfterMilliseconds: delay)
            for line in run.lines { journal.apply(line, cycle: cycle) }
            journal.endCycle(cycle)
            if let failure = run.failure {
                Issue.record("\(kind) cycle \(cycle) (kill delays so far \(delays) ms): \(failure)\nstderr: \(run.standardError)")
                return
            }
        }
        for problem in journal.problems.prefix(20) {
            Issue.record("\(kind): \(problem) (kill delays \(delays) ms)")
        }
        #expect(journal.problems.count <= 20, "\(journal.problems.count) journal problems in all")
        #expect(journal.cyclesWithWork == Self.cycles, "every cycle did some work before its kill")

        var torn: TornTail?
        var segmentFiles = 0
        if kind == .file {
            segmentFiles = TornTail.segmentNames(in: directory).count
            torn = try TornTail.tear(directory)
            #expect(torn != nil, "the journal has a last segment whose tail can be torn")
        }

        // Reopen in this process and compare what the store holds with the journal.
        var configuration = BrokerConfiguration()
        configuration.defaultPolicy.redelivery = RedeliveryPolicy(maximumRedeliveries: -1)
        let store: any MessageStore =
            switch kind {
            case .file: FileStore(directory: directory, options: .init(durability: .sync))
            default: LMDBStore(directory: directory, options: .init(durability: .sync))
            }
        let broker = try Broker(store: store, configuration: configuration)
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        let session = try connection.createSession(.clientAcknowledge)
        let consumer = try session.createConsumer(for: Self.queue)
        var present: [Int: [Message]] = [:]
        while let message = try await consumer.receive(timeout: .milliseconds(500)) {
            guard let n = try message.property("n", as: Int.self) else {
                Issue.record("a stored message has no property n: \(message.text ?? "-")")
                continue
            }
            present[n, default: []].append(message)
        }
        let deadLetters = try session.createConsumer(for: .queue(Queue("DLQ.crash-test")))
        #expect(try await deadLetters.receiveNoWait() == nil, "nothing is dead-lettered (unlimited redeliveries)")

        var failures: [String] = []
        for (n, copies) in present.sorted(by: { $0.key < $1.key }) {
            let message = copies[0]
            if copies.count > 1 { failures.append("message \(n) is stored \(copies.count) times") }
            if !journal.sending.contains(n) { failures.append("message \(n) is stored but was never sent") }
            if journal.acked.contains(n) { failures.append("message \(n) was acknowledged (ACKED) but is still stored") }
            if message.text != "message \(n)" { failures.append("message \(n) has body \(message.text ?? "nil")") }
            if let count = journal.highestDeliveryCount[n], !(message.redelivered && message.deliveryCount > count) {
                failures.append("""
                    message \(n) was delivered (count \(count)) and not acknowledged, but comes back with \
                    redelivered=\(message.redelivered) deliveryCount=\(message.deliveryCount)
                    """)
            }
        }
        let committedAndNeverAcknowledged = journal.sent.subtracting(journal.acking)
        for n in committedAndNeverAcknowledged.sorted() where present[n] == nil {
            failures.append("message \(n) was committed (SENT) and never acknowledged, but is missing")
        }
        for failure in failures.prefix(20) {
            Issue.record("\(kind) after the final kill: \(failure) (kill delays \(delays) ms)")
        }
        #expect(failures.count <= 20, "\(failures.count) problems in the final store in all")
        #expect(!journal.sent.isEmpty && !journal.acked.isEmpty, "the worker sent and acknowledged messages")

        // The torn record is gone: where it began, the journal now holds a whole record or ends.
        broker.close()
        if let torn { try torn.expectCutOff() }

        let seconds = (ContinuousClock.now - started).components.seconds
        let files = kind == .file ? "; \(segmentFiles) segment files at the end, tail torn \(torn?.description ?? "-")" : ""
        print("""
            CrashRecoveryTests[\(kind)]: \(Self.cycles) SIGKILL cycles (delays \(delays) ms) in ~\(seconds) s; \
            \(journal.sent.count) messages committed, \(journal.acked.count) acknowledged, \
            \(journal.deliveries) deliveries (\(journal.redeliveries) redelivered, \
            \(journal.redeliveriesAfterRestart) after a restart); \(present.count) left in the store\(files)
            """)
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

// MARK: - The journal

/// What the worker's journal says, accumulated over every cycle, with the checks that can be made
/// line by line.
struct Journal {
    /// Messages named by a `SENDING` line: they may exist.
    var sending = Set<Int>()
    /// Messages named by a `SENT` line: committed.
    var sent = Set<Int>()
    /// Messages named by an `ACKING` line: they may have been removed.
    var acking = Set<Int>()
    /// Messages named by an `ACKED` line: removed for good.
    var acked = Set<Int>()
    /// The highest delivery count each delivered message showed.
    var highestDeliveryCount: [Int: Int] = [:]
    /// The highest message number named so far; the next worker starts above it.
    var highestNamed = 0
    var deliveries = 0
    var redeliveries = 0
    var redeliveriesAfterRestart = 0
    var cyclesWithWork = 0
    var problems: [String] = []

    private var deliveredThisCycle = Set<Int>()
    private var workThisCycle = false

    mutating func apply(_ line: String, cycle: Int) {
        let fields = line.split(separator: " ")
        guard let verb = fields.first else { return }
        switch verb {
        case "READY":
            break
        case "SENDING", "SENT":
            guard fields.count == 2, let range = Self.range(fields[1]) else { return problem(cycle, "malformed line '\(line)'") }
            if verb == "SENDING" {
                sending.formUnion(range)
                highestNamed = max(highestNamed, range.upperBound)
            } else {
                if !range.allSatisfy(sending.contains) { problem(cycle, "'\(line)' without SENDING") }
                sent.formUnion(range)
                workThisCycle = true
            }
        case "DELIVERED":
            guard fields.count == 4, let n = Int(fields[1]),
                  fields[2].hasPrefix("redelivered="), fields[3].hasPrefix("count="),
                  let count = Int(fields[3].dropFirst("count=".count))
            else { return problem(cycle, "malformed line '\(line)'") }
            let redelivered = fields[2] == "redelivered=true"
            deliveries += 1
            if redelivered { redeliveries += 1 }
            if !sending.contains(n) { problem(cycle, "message \(n) delivered but never sent") }
            if acked.contains(n) { problem(cycle, "message \(n) delivered again after it was acknowledged (ACKED)") }
            if count < 1 || redelivered != (count > 1) {
                problem(cycle, "message \(n) delivered with redelivered=\(redelivered) and deliveryCount=\(count)")
            }
            if let previous = highestDeliveryCount[n] {
                if !deliveredThisCycle.contains(n) { redeliveriesAfterRestart += 1 }
                if !redelivered || count <= previous {
                    problem(cycle, """
                        message \(n) was delivered before (count \(previous)) and not acknowledged; \
                        delivered again with redelivered=\(redelivered) count=\(count)
                        """)
                }
            }
            highestDeliveryCount[n] = max(highestDeliveryCount[n] ?? 0, count)
            deliveredThisCycle.insert(n)
        case "ACKING", "ACKED":
            guard fields.count == 2 else { return problem(cycle, "malformed line '\(line)'") }
            let numbers = fields[1].split(separator: ",").compactMap { Int($0) }
            if verb == "ACKING" {
                acking.formUnion(numbers)
            } else {
                if !numbers.allSatisfy(acking.contains) { problem(cycle, "'\(line)' without ACKING") }
                acked.formUnion(numbers)
                workThisCycle = true
            }
        case "ROLLEDBACK", "RECOVERED":
            break
        default:
            problem(cycle, "unexpected line '\(line)'")
        }
    }

    mutating func endCycle(_ cycle: Int) {
        if workThisCycle { cyclesWithWork += 1 }
        workThisCycle = false
        deliveredThisCycle = []
    }

    private mutating func problem(_ cycle: Int, _ text: String) {
        problems.append("cycle \(cycle): \(text)")
    }

    private static func range(_ text: Substring) -> ClosedRange<Int>? {
        let bounds = text.split(separator: ".", omittingEmptySubsequences: true)
        guard bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low <= high else { return nil }
        return low...high
    }
}

// MARK: - Running the worker

enum CrashWorker {
    static let name = "ConveyorCrashWorker"

    /// The worker executable: next to the test bundle (the build directory), else `.build/debug`.
    static func locate() -> URL? {
        let fileManager = FileManager.default
        let starts = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for start in starts {
            var directory = start.standardizedFileURL
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent(name)
                if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
                directory = directory.deletingLastPathComponent()
            }
        }
        let fallback = URL(fileURLWithPath: fileManager.currentDirectoryPath)
            .appendingPathComponent(".build/debug/\(name)")
        return fileManager.isExecutableFile(atPath: fallback.path) ? fallback : nil
    }

    struct Run {
        var lines: [String]
        var standardError: String
        /// Why the cycle cannot be trusted (the worker failed, never worked, or was not killed).
        var failure: String?
    }

    /// Starts the worker, waits until it reports work, lets it run `killAfterMilliseconds` more,
    /// kills it with SIGKILL and returns its complete journal.
    static func runAndKill(
        _ executable: URL, store: StoreKind, directory: String, first: Int, killAfterMilliseconds delay: Int
    ) async -> Run {
        let worker: WorkerProcess
        do {
            worker = try WorkerProcess(executable, arguments: [store.rawValue, directory, String(first)])
        } catch {
            return Run(lines: [], standardError: "", failure: "\(error)")
        }
        defer { worker.killIfRunning() }
        let process = worker.process
        let journal = worker.output
        let standardError = worker.errors

        var failure: String?
        // Wait until the worker has done some work (it starts in well under a second; allow for a
        // loaded machine).
        let deadline = ContinuousClock.now + .seconds(30)
        while !journal.text.contains("\nSENT ") && !journal.text.contains("\nACKED ") {
            if !process.isRunning || journal.isFinished {
                failure = "the worker ended before doing any work"
                break
            }
            if ContinuousClock.now > deadline {
                failure = "the worker did no work within 30 s"
                break
            }
            try? await Task.sleep(for: .milliseconds(2))  // poll interval, bounded by the deadline above
        }
        if failure == nil {
            try? await Task.sleep(for: .milliseconds(delay))  // deliberate: wait until the random moment of the kill
            if !process.isRunning { failure = "the worker ended by itself before the kill" }
        }
        kill(process.processIdentifier, SIGKILL)
        let exitDeadline = ContinuousClock.now + .seconds(20)
        while process.isRunning || !journal.isFinished || !standardError.isFinished {
            if ContinuousClock.now > exitDeadline {
                return Run(lines: [], standardError: standardError.text, failure: "the worker did not end after SIGKILL")
            }
            try? await Task.sleep(for: .milliseconds(2))  // poll interval, bounded by exitDeadline
        }
        if failure == nil, process.terminationReason != .uncaughtSignal || process.terminationStatus != SIGKILL {
            failure = "the worker ended with \(process.terminationReason) \(process.terminationStatus), not by SIGKILL"
        }
        // Lines are written whole (one write each); keep only complete ones.
        var text = journal.text
        if let lastNewline = text.lastIndex(of: "\n") {
            text = String(text[...lastNewline])
        } else {
            text = ""
        }
        let lines = text.split(separator: "\n").map(String.init)
        if failure == nil, let error = lines.first(where: { $0.hasPrefix("ERROR") }) { failure = error }
        return Run(lines: lines, standardError: standardError.text, failure: failure)
    }
}
