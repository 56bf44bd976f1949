@testable import Conveyor
import ConveyorLMDB
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A full disk, simulated without root: `ConveyorCrashWorker fill` (Sources/ConveyorCrashWorker/
/// FillMode.swift) opens a store in sync mode, limits the size of the files it may write
/// (`RLIMIT_FSIZE`, with SIGXFSZ ignored, so that a write past the limit fails with EFBIG as one on
/// a full disk fails with ENOSPC) and sends persistent 4 KiB messages one at a time until a send
/// fails. The send must fail with a ``ConveyorError`` of code `storage` (or `resourceAllocation`)
/// whose message names the store; the process must neither crash nor hang; and this process,
/// without the limit, must open the store cleanly, find every message whose send returned, and
/// be able to send again.
///
/// No message beyond the last one sent may be in the store: both stores leave nothing of a write
/// that fails (LMDB aborts the transaction when writing its pages fails, before the meta page that
/// would commit it; the FileStore cuts the segment back to the end of its records). Only a failed
/// *sync* could leave a record in doubt (the FileStore then fails every later commit), and the file
/// size limit makes writes fail, never syncs.
extension HeavyTests {
@Suite("Disk full", .timeLimit(.minutes(2)))
struct DiskFullTests {
    /// How much each store file may grow past its size after the store opened.
    static let headroom = 2 << 20
    static let queue = Destination.queue(Queue("disk-full"))

    @Test("A send on a full disk fails with a storage error and loses nothing committed", arguments: [StoreKind.lmdb, .file])
    func aSendOnAFullDiskFailsWithAStorageErrorAndLosesNothingCommitted(store kind: StoreKind) async throws {
        guard let worker = CrashWorker.locate() else {
            Issue.record("the ConveyorCrashWorker executable was not found; build it with `swift build`")
            return
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-diskfull-\(kind.rawValue)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        // 1. Fill the store in a child process with a file size limit.
        let run = await FillRun.start(worker, store: kind, directory: directory.path, headroom: Self.headroom)
        let context = "\(kind): exit \(run.exit), last lines \(run.lines.suffix(3)), stderr: \(run.standardError)"
        #expect(run.exit == "exit 0", "the worker ends normally after the failed send (\(context))")
        #expect(run.lines.first?.hasPrefix("LIMIT ") == true, "the worker set the file size limit (\(context))")
        let sent = run.lines.compactMap { $0.hasPrefix("SENT ") ? Int($0.dropFirst("SENT ".count)) : nil }
        #expect(sent.enumerated().allSatisfy { $0.offset + 1 == $0.element }, "sends are numbered 1, 2, … (\(context))")
        #expect(sent.count >= 10, "some sends succeeded before the disk filled (\(context))")
        let errors = run.lines.filter { $0.hasPrefix("ERROR ") }
        #expect(errors.count == 1, "exactly one send failed (\(context))")
        if let error = errors.first {
            let fields = error.split(separator: " ", maxSplits: 2).map(String.init)
            let code = fields.count > 1 ? fields[1] : ""
            let message = fields.count > 2 ? fields[2] : ""
            #expect(["storage", "resourceAllocation"].contains(code), "the failed send's error code: \(error)")
            // The message names the store (canonical path: its last component is the same).
            #expect(message.contains(directory.lastPathComponent), "the error names the store: \(error)")
            #expect(
                message.contains("LMDB store") || message.contains("journal segment"),
                "the error says what failed: \(error)")
            #expect(message.contains("disk may be full") || message.contains("free disk space"),
                    "the error points at the full disk: \(error)")
            print("DiskFullTests[\(kind)]: \(run.lines.first ?? "") — \(sent.count) sends, then: \(error)")
        }
        #expect(run.lines.last == "CLOSED", "the broker closed after the failure (\(context))")

        // A failed FileStore write leaves no part of its record behind: the active segment ends
        // with its last whole record.
        if kind == .file, let name = TornTail.segmentNames(in: directory).last {
            let bytes = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
            let (end, _) = TornTail.validRecords(bytes)
            #expect(end == bytes.count, "\(name) holds only whole records (valid up to \(end) of \(bytes.count) bytes)")
        }

        // 2. Reopen without the limit: every message whose send returned is there, exactly once.
        var broker = try Self.openBroker(kind, directory)
        do {
            let received = try await Self.receiveAll(broker, expecting: sent.count)
            var counts: [Int: Int] = [:]
            for n in received { counts[n, default: 0] += 1 }
            let missing = sent.filter { counts[$0] == nil }
            let duplicated = counts.filter { $0.value > 1 }.keys.sorted()
            let extra = Set(counts.keys).subtracting(sent).sorted()
            #expect(missing.isEmpty, "\(kind): \(missing.count) committed messages lost: \(missing.prefix(20))")
            #expect(duplicated.isEmpty, "\(kind): messages received twice: \(duplicated.prefix(20))")
            #expect(extra.isEmpty, "\(kind): messages whose send failed are in the store: \(extra.prefix(20))")

            // 3. With the limit gone the store takes new messages, and keeps them over a restart.
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let producer = try connection.createSession().createProducer(for: Self.queue)
            let fresh = Array(1_000_001...1_000_050)
            for n in fresh {
                _ = try await producer.send(Message.bytes([UInt8](repeating: 7, count: 4 << 10)).with("n", n))
            }
            broker.close()
            broker = try Self.openBroker(kind, directory)
            let again = try await Self.receiveAll(broker, expecting: fresh.count)
            #expect(again.sorted() == fresh, "\(kind): the messages sent after the failure survive a restart")
        } catch {
            Issue.record("\(kind): after the disk filled: \(error)")
        }
        broker.close()
    }

    /// Opens a broker on the store in sync mode with default options; opening must not throw.
    static func openBroker(_ kind: StoreKind, _ directory: URL) throws -> Broker {
        let store: any MessageStore =
            switch kind {
            case .file: FileStore(directory: directory, options: .init(durability: .sync))
            default: LMDBStore(directory: directory, options: .init(durability: .sync))
            }
        do {
            return try Broker(store: store)
        } catch {
            Issue.record("\(kind): the store does not open after the disk filled: \(error)")
            throw error
        }
    }

    /// Receives (auto-acknowledging) `count` messages and then whatever else the queue holds;
    /// returns their numbers.
    static func receiveAll(_ broker: Broker, expecting count: Int) async throws -> [Int] {
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        defer { connection.close() }
        let consumer = try connection.createSession().createConsumer(for: queue)
        var numbers: [Int] = []
        // Generous per-message timeouts for the expected ones, a short one to find any extras.
        while let message = try await consumer.receive(timeout: numbers.count < count ? .seconds(10) : .milliseconds(300)) {
            guard let n = try message.property("n", as: Int.self) else {
                Issue.record("a message without property n")
                continue
            }
            numbers.append(n)
        }
        return numbers
    }
}
}

/// One run of `ConveyorCrashWorker fill`, waited for to its end.
struct FillRun {
    var lines: [String]
    var standardError: String
    /// How the worker ended: "exit <status>", "signal <number>", or why it was not seen to end.
    var exit: String

    static func start(_ executable: URL, store: StoreKind, directory: String, headroom: Int) async -> FillRun {
        let worker: WorkerProcess
        do {
            worker = try WorkerProcess(executable, arguments: ["fill", store.rawValue, directory, String(headroom)])
        } catch {
            return FillRun(lines: [], standardError: "", exit: "\(error)")
        }
        defer { worker.killIfRunning() }
        let process = worker.process
        let journal = worker.output
        let standardError = worker.errors
        // A fill takes well under a second here (a few thousand synced sends at most); allow for a
        // slow disk and a loaded machine, then call it a hang.
        let deadline = ContinuousClock.now + .seconds(90)
        var exit: String?
        while process.isRunning || !journal.isFinished || !standardError.isFinished {
            if ContinuousClock.now > deadline {
                exit = "the worker did not end within 90 s (hung?)"
                break
            }
            try? await Task.sleep(for: .milliseconds(5))  // poll interval, bounded by the deadline above
        }
        let text = journal.text
        let lines = text.split(separator: "\n").map(String.init)
        if exit == nil {
            exit = process.terminationReason == .exit
                ? "exit \(process.terminationStatus)" : "signal \(process.terminationStatus)"
        }
        return FillRun(lines: lines, standardError: standardError.text, exit: exit ?? "?")
    }
}
