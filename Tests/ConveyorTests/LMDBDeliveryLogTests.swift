// The LMDB store's delivery log (Sources/ConveyorLMDB/DeliveryLog.swift): with one process, delivery
// counts are recorded without an LMDB commit, folded into the next commit, and recovered after a
// crash. A crash is a real SIGKILL'd child process (`ConveyorCrashWorker deliveries`), or, where a
// test needs to shape what a crash leaves, a copy of the store's files taken while the store is
// open and idle: exactly what a process killed at that moment leaves on disk.
@testable import ConveyorLMDB
import Conveyor
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HeavyTests {
@Suite("LMDB delivery log", .timeLimit(.minutes(2)))
struct LMDBDeliveryLogTests {
    /// The modes in which a single-process store logs deliveries.
    static let durabilities: [LMDBStore.Durability] = [.sync, .groupCommit]
    let orders = StoreQueueKey.queue("orders")

    // MARK: Recording and folding

    @Test(arguments: durabilities)
    func recordingDeliveriesMakesNoLMDBCommitAndTheNextCommitFoldsThem(durability: LMDBStore.Durability) throws {
        let (_, store) = try openStore(holding: 3, options: .init(durability: durability))
        defer { store.close() }
        let before = try #require(store.lastTransactionIDForTesting())

        try store.recordDeliveries(counts([1: 1, 3: 2]))
        #expect(store.lastTransactionIDForTesting() == before, "no LMDB transaction was committed")
        #expect(try deliveryCounts(store) == [1: 1, 2: 0, 3: 2], "reads see the counts at once")
        #expect(store.deliveryLog.sizesForTesting == [recordSize(entries: 2), 0])

        // The next commit takes them into its commit-log record, and the delivery log empties.
        try store.commit(StoreBatch([.remove(sequence: 2, from: orders)]))
        #expect(store.lastTransactionIDForTesting() == before, "the commit went to the commit log")
        #expect(store.deliveryLog.overlayCountForTesting == 0, "the counts are read from the commit log's changes now")
        #expect(store.deliveryLog.sizesForTesting == [0, 0])
        #expect(try deliveryCounts(store) == [1: 1, 3: 2])

        // A checkpoint writes them into the database in one transaction.
        try store.checkpointForTesting()
        #expect(store.lastTransactionIDForTesting() == before + 1)
        #expect(store.commitLogStateForTesting() == (0, true))
        #expect(try deliveryCounts(store) == [1: 1, 3: 2])
    }

    @Test
    func foldsSwitchBetweenTheTwoFilesAndTruncateTheOldOne() throws {
        let (_, store) = try openStore(holding: 3)
        defer { store.close() }

        try store.recordDeliveries(counts([1: 1]))
        #expect(store.deliveryLog.sizesForTesting == [recordSize(entries: 1), 0])
        try store.commit(add(4...4))
        #expect(store.deliveryLog.sizesForTesting == [0, 0])

        // Appends go to the other file now.
        try store.recordDeliveries(counts([2: 1, 3: 1]))
        #expect(store.deliveryLog.sizesForTesting == [0, recordSize(entries: 2)])
        try store.commit(add(5...5))
        #expect(store.deliveryLog.sizesForTesting == [0, 0])
        try store.recordDeliveries(counts([3: 2]))
        #expect(store.deliveryLog.sizesForTesting == [recordSize(entries: 1), 0])

        try store.commit(add(6...6))
        #expect(store.deliveryLog.sizesForTesting == [0, 0])
        #expect(store.deliveryLog.beginFold() == nil, "nothing logged since the last fold")
        #expect(try deliveryCounts(store) == [1: 1, 2: 1, 3: 2, 4: 0, 5: 0, 6: 0])
    }

    @Test
    func aFileEmptiedByAFoldIsWrittenOverAndItsOldRecordsStayFolded() throws {
        let (directory, store) = try openStore(holding: 3)
        defer { store.close() }
        try store.recordDeliveries(counts([1: 1]))
        try store.recordDeliveries(counts([3: 4]))
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 3, in: orders, count: 0)]))
        try store.recordDeliveries(counts([2: 1]))
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 4, message: message(4), targets: [orders]))]))
        try store.recordDeliveries(counts([1: 2]))

        // deliveries-a.log: the new record, then the old, folded one with message 3's count 4.
        #expect(store.deliveryLog.sizesForTesting == [recordSize(entries: 1), 0])
        #expect(logSizes(directory)[0] == 2 * recordSize(entries: 1))
        #expect(try deliveryCounts(afterOpening: try crashCopy(of: directory)) == [1: 2, 2: 1, 3: 0, 4: 0])

        // A file that grew large is cut when emptied.
        let many = StoreBatch((1...60_000).map { .setDeliveryCount(sequence: UInt64($0), in: orders, count: 1) })
        try store.recordDeliveries(many)
        #expect(logSizes(directory)[0] > DeliveryLog.truncationThreshold)
        try store.commit(StoreBatch([.remove(sequence: 4, from: orders)]))
        #expect(logSizes(directory)[0] == 0)
        #expect(try deliveryCounts(store) == [1: 2, 2: 1, 3: 1])
    }

    @Test
    func readingStopsAtATornDamagedOrOlderRecord() {
        let key = { (sequence: UInt64) in DeliveryLog.Key(destination: 1, sequence: sequence) }
        var bytes: [UInt8] = []
        DeliveryLogRecord.encode([(key(1), 1)], generation: 3, into: &bytes)
        DeliveryLogRecord.encode([(key(2), 1), (key(3), 1)], generation: 4, into: &bytes)
        let valid = bytes.count
        DeliveryLogRecord.encode([(key(4), 9)], generation: 2, into: &bytes)    // older: left behind
        func sequences(_ bytes: [UInt8]) -> (Int, [UInt64]) {
            var found: [UInt64] = []
            let end = bytes.withUnsafeBytes { DeliveryLogRecord.read($0) { _, entries in found += entries.map(\.key.sequence) } }
            return (end, found)
        }
        #expect(sequences(bytes) == (valid, [1, 2, 3]))
        #expect(sequences(Array(bytes[..<(valid - 1)])) == (recordSize(entries: 1), [1]))
        var damaged = bytes
        damaged[recordSize(entries: 1) + 1] ^= 1    // the second record's length
        #expect(sequences(damaged) == (recordSize(entries: 1), [1]))
        #expect(sequences([UInt8](repeating: 0, count: 64)) == (0, []))
    }

    @Test
    func aCountRaisedDuringAFoldStaysAndAnUnfinishedFoldLosesNothing() throws {
        let directory = SharedTemporaryDirectory()
        try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        let log = DeliveryLog()
        try log.open(directory: directory.path, foldedGeneration: 0)
        defer { log.close() }
        log.learn([orders: 7])

        _ = try log.append(counts([1: 1, 2: 1]))
        let first = try #require(log.beginFold())
        #expect(first.generation == 1)
        #expect(first.entries.map(\.key.sequence) == [1, 2])
        // Recorded while the commit runs: the other file, the next generation.
        _ = try log.append(counts([1: 2]))
        log.finishFold(first)
        #expect(log.overlayCountForTesting == 1, "message 1's count changed since the fold began")
        #expect(log.sizesForTesting == [0, recordSize(entries: 1)])

        // A fold whose commit fails is never finished: the next one takes everything again.
        let failed = try #require(log.beginFold())
        _ = try log.append(counts([3: 1]))
        #expect(log.sizesForTesting == [recordSize(entries: 1), recordSize(entries: 1)])
        let retried = try #require(log.beginFold())
        #expect(retried.generation > failed.generation)
        #expect(retried.entries.map(\.key.sequence) == [1, 3])
        log.finishFold(retried)
        #expect(log.overlayCountForTesting == 0)
        #expect(log.sizesForTesting == [0, 0])
        #expect(log.beginFold() == nil, "nothing logged since")
        #expect(try DeliveryLog.logged(in: directory.path, after: retried.generation).counts.isEmpty, "what is left is folded")
    }

    @Test
    func aFailedCommitKeepsTheLoggedCounts() async throws {
        let options = LMDBStore.Options(initialMapSize: 1 << 20, maximumMapSize: 2 << 20)
        let (directory, store) = try openStore(holding: 2, options: options)
        defer { store.close() }
        try store.recordDeliveries(counts([1: 3]))

        let huge = Message(body: .bytes(Data(repeating: 7, count: 4 << 20)))
        await expectError(.resourceAllocation) {
            try store.commit(StoreBatch([.add(StoredMessage(sequence: 3, message: huge, targets: [orders]))]))
        }
        #expect(try deliveryCounts(store) == [1: 3, 2: 0])
        #expect(store.deliveryLog.overlayCountForTesting == 1)
        let crashed = try crashCopy(of: directory)
        #expect(try deliveryCounts(afterOpening: crashed, options: options) == [1: 3, 2: 0])

        // The next commit folds them.
        try store.commit(StoreBatch([.remove(sequence: 2, from: orders)]))
        #expect(store.deliveryLog.overlayCountForTesting == 0)
        #expect(store.deliveryLog.sizesForTesting == [0, 0])
        #expect(try deliveryCounts(store) == [1: 3])
    }

    @Test
    func aFoldThatFailsAtCloseIsLoggedAndTheNextOpenAppliesTheCounts() async throws {
        let (logger, records) = RecordingLogHandler.logger()
        var options = LMDBStore.Options(initialMapSize: 1 << 20, maximumMapSize: 1 << 20, logger: logger)
        let (directory, store) = try openStore(holding: 2, options: options)
        // Fill the map with small messages, in ever smaller batches, until not even one more fits.
        var next: UInt64 = 3
        for batchSize in [1_000, 100, 10, 1] {
            while (try? store.commit(add(next...(next + UInt64(batchSize) - 1)))) != nil { next += UInt64(batchSize) }
        }
        await expectError(.resourceAllocation) { try store.commit(add(next...next)) }
        // Counts for every message: folding them rewrites every page of references, which the
        // full map has no room for.
        let stored = 1..<next
        try store.recordDeliveries(StoreBatch(stored.map { .setDeliveryCount(sequence: $0, in: orders, count: 1) }))

        store.close()
        let warnings = records.messages(atLeast: .warning)
        #expect(warnings.contains { $0.contains("could not fold the delivery log while closing") }, "\(warnings)")

        options.maximumMapSize = 8 << 20
        let counts = try deliveryCounts(afterOpening: directory, options: options)
        #expect(counts.count == stored.count)
        #expect(counts.values.allSatisfy { $0 == 1 }, "the next open applied every logged count")
    }

    // MARK: Crashes

    @Test
    func countsSurviveAKilledProcessAndOpenEmptiesTheLog() async throws {
        guard let executable = CrashWorker.locate() else {
            Issue.record("the ConveyorCrashWorker executable was not found; build it with `swift build`")
            return
        }
        let directory = SharedTemporaryDirectory()
        let worker = try WorkerProcess(executable, arguments: ["deliveries", directory.path], keepingInputOpen: true)
        defer { worker.killIfRunning() }
        let recorded = await waitUntil(timeout: .seconds(60)) {
            !worker.lines(startingWith: "RECORDED").isEmpty || !worker.process.isRunning
        }
        guard recorded, worker.process.isRunning else {
            Issue.record("the worker did not record its deliveries:\(worker.output.text)\(worker.errors.text)")
            return
        }
        #expect(logSizes(directory).reduce(0, +) > 0, "the last counts are in the log only")
        kill(worker.process.processIdentifier, SIGKILL)
        #expect(await waitUntil(timeout: .seconds(20)) { worker.isDone })
        #expect(worker.process.terminationReason == .uncaughtSignal)

        // See Sources/ConveyorCrashWorker/DeliveriesMode.swift for what the worker did.
        let store = LMDBStore(directory: directory.url)
        let contents = try store.openAndReadAll()
        #expect(logSizes(directory) == [0, 0], "open applied the log and emptied it")
        #expect(store.deliveryLog.overlayCountForTesting == 0)
        let found = Dictionary(uniqueKeysWithValues: (contents.messages[.queue("deliveries")] ?? []).map { ($0.sequence, $0.deliveryCount) })
        var expected: [UInt64: Int] = [1: 2, 3: 1]
        for sequence in 4...10 { expected[UInt64(sequence)] = 0 }
        #expect(found == expected, "message 2 was removed and stays removed")
        store.close()

        // What open applied is in the database.
        let reopened = LMDBStore(directory: directory.url)
        defer { reopened.close() }
        let again = try reopened.openAndReadAll().messages[.queue("deliveries")] ?? []
        #expect(Dictionary(uniqueKeysWithValues: again.map { ($0.sequence, $0.deliveryCount) }) == expected)
    }

    @Test
    func aTornOrDamagedRecordEndsTheLog() throws {
        let (directory, store) = try openStore(holding: 3)
        defer { store.close() }
        try store.recordDeliveries(counts([1: 1]))
        try store.recordDeliveries(counts([2: 1]))
        try store.recordDeliveries(counts([3: 1]))
        let size = recordSize(entries: 1)

        // The last record cut short, as a write interrupted by a crash leaves it.
        let torn = try crashCopy(of: directory)
        try truncate(torn, file: 0, to: 3 * size - 5)
        #expect(try deliveryCounts(afterOpening: torn) == [1: 1, 2: 1, 3: 0])
        #expect(logSizes(torn) == [0, 0])

        // A damaged byte in the second record: it and everything after it are ignored.
        let damaged = try crashCopy(of: directory)
        let path = damaged.url.appendingPathComponent(DeliveryLog.fileNames[0])
        var bytes = try Data(contentsOf: path)
        bytes[size + DeliveryLogRecord.headerSize + 3] ^= 0x40
        try bytes.write(to: path)
        #expect(try deliveryCounts(afterOpening: damaged) == [1: 1, 2: 0, 3: 0])

        // Zeros where a record should be (unwritten blocks after a power loss) end the log too.
        let zeroed = try crashCopy(of: directory)
        try Data(count: 64).write(to: zeroed.url.appendingPathComponent(DeliveryLog.fileNames[1]))
        #expect(try deliveryCounts(afterOpening: zeroed) == [1: 1, 2: 1, 3: 1])
    }

    @Test
    func anOrdinaryCountCommittedLaterWinsAlsoAfterACrash() throws {
        let (directory, store) = try openStore(holding: 2)
        defer { store.close() }
        try store.recordDeliveries(counts([1: 4, 2: 4]))
        let logBeforeCommit = try crashCopy(of: directory)

        try store.commit(StoreBatch([.setDeliveryCount(sequence: 1, in: orders, count: 0)]))
        #expect(try deliveryCounts(store) == [1: 0, 2: 4])
        #expect(try deliveryCounts(afterOpening: try crashCopy(of: directory)) == [1: 0, 2: 4])

        // A crash after the commit and before the old log file was emptied: the file's records
        // are marked folded by the commit, so the logged 4 does not come back.
        let late = try crashCopy(of: directory, logsFrom: logBeforeCommit)
        #expect(logSizes(late)[0] > 0)
        #expect(try deliveryCounts(afterOpening: late) == [1: 0, 2: 4])

        // A count recorded after the commit raises it again.
        try store.recordDeliveries(counts([1: 1]))
        #expect(try deliveryCounts(store) == [1: 1, 2: 4])
    }

    @Test
    func countsOfRemovedReferencesAreDroppedNotResurrected() throws {
        let (directory, store) = try openStore(holding: 3)
        defer { store.close() }
        let audit = StoreQueueKey.queue("audit")
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 4, message: message(4), targets: [audit]))]))
        try store.recordDeliveries(StoreBatch([
            .setDeliveryCount(sequence: 1, in: orders, count: 1),
            .setDeliveryCount(sequence: 2, in: orders, count: 1),
            .setDeliveryCount(sequence: 4, in: audit, count: 1),
            .setDeliveryCount(sequence: 5, in: .queue("nowhere"), count: 1),    // a queue that holds nothing
        ]))
        try store.commit(StoreBatch([.remove(sequence: 1, from: orders), .purge(audit)]))
        // Counts for references that are gone, logged after they went.
        try store.recordDeliveries(StoreBatch([
            .setDeliveryCount(sequence: 1, in: orders, count: 3),
            .setDeliveryCount(sequence: 4, in: audit, count: 3),
            .setDeliveryCount(sequence: 2, in: orders, count: 2),
        ]))
        #expect(try deliveryCounts(store) == [2: 2, 3: 0])
        #expect(try store.messages(in: audit, after: 0, limit: 10).isEmpty)

        let crashed = try crashCopy(of: directory)
        let reopened = LMDBStore(directory: crashed.url)
        defer { reopened.close() }
        let contents = try reopened.openAndReadAll()
        #expect(contents.queues.keys.sorted { $0.description < $1.description } == [orders])
        #expect(contents.messages[orders]?.map(\.sequence) == [2, 3])
        #expect(contents.messages[orders]?.map(\.deliveryCount) == [2, 0])
    }

    @Test(arguments: [LMDBStore.Options(sharing: .processes), LMDBStore.Options(durability: .osBuffered)])
    func aStoreThatDoesNotLogCommitsCountsAndFoldsWhatALoggingStoreLeft(options: LMDBStore.Options) throws {
        let (directory, single) = try openStore(holding: 2)
        try single.recordDeliveries(counts([1: 2]))
        let crashed = try crashCopy(of: directory)
        single.close()

        let other = LMDBStore(directory: crashed.url, options: options)
        _ = try other.open()
        defer { other.close() }
        #expect(!other.logsDeliveries)
        #expect(try deliveryCounts(other) == [1: 2, 2: 0])
        #expect(logSizes(crashed) == [-1, -1], "a store that does not log removes the log files")

        // Processes sharing a store see each other's counts in the database, and an OS-buffered
        // commit costs no sync: one commit each.
        let before = try #require(other.lastTransactionIDForTesting())
        try other.recordDeliveries(counts([2: 1]))
        #expect(other.lastTransactionIDForTesting() == before + 1)
        #expect(try deliveryCounts(other) == [1: 2, 2: 1])
    }


    @Test
    func aLogThatGrowsPastTheThresholdWithoutACommitIsFoldedByACommitOfItsOwn() throws {
        let (_, store) = try openStore(holding: 2)
        defer { store.close() }
        let before = try #require(store.lastTransactionIDForTesting())
        // Redelivered again and again with no commit in between (a consumer rolling back, say):
        // records of 1,000 counts each, until the log reaches the threshold.
        let perRecord = 1_000
        func redeliverMessage1() throws {
            try store.recordDeliveries(StoreBatch((0..<perRecord).map { _ in
                count += 1
                return .setDeliveryCount(sequence: 1, in: orders, count: count)
            }))
        }
        var count = 0
        let belowThreshold = DeliveryLog.foldThreshold / recordSize(entries: perRecord)
        for record in 1...belowThreshold {
            try redeliverMessage1()
            #expect(store.lastTransactionIDForTesting() == before, "no commit before the threshold (record \(record))")
        }
        #expect(store.deliveryLog.sizesForTesting == [belowThreshold * recordSize(entries: perRecord), 0])

        // The record that crosses it folds the log into the database in a commit of its own.
        try redeliverMessage1()
        #expect(store.lastTransactionIDForTesting() == before + 1)
        #expect(store.deliveryLog.sizesForTesting == [0, 0], "the folded log is emptied")
        #expect(store.deliveryLog.overlayCountForTesting == 0)
        #expect(try deliveryCounts(store) == [1: count, 2: 0])
    }
    // MARK: Helpers

    /// A new directory with an open store (one process; sync unless `options` say otherwise)
    /// holding messages 1…`count` in `orders`.
    func openStore(holding count: UInt64, options: LMDBStore.Options = .init()) throws -> (SharedTemporaryDirectory, LMDBStore) {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        try store.commit(add(1...count))
        return (directory, store)
    }

    func message(_ sequence: UInt64) -> Message {
        Message(body: .text("message \(sequence)"))
    }

    func add(_ sequences: ClosedRange<UInt64>) -> StoreBatch {
        StoreBatch(sequences.map { .add(StoredMessage(sequence: $0, message: message($0), targets: [orders])) })
    }

    /// Delivery counts for messages of `orders`.
    func counts(_ counts: [UInt64: Int]) -> StoreBatch {
        StoreBatch(counts.sorted { $0.key < $1.key }.map { .setDeliveryCount(sequence: $0.key, in: orders, count: $0.value) })
    }

    /// The delivery count of every message of `orders`, by sequence.
    func deliveryCounts(_ store: LMDBStore) throws -> [UInt64: Int] {
        Dictionary(uniqueKeysWithValues: try store.readAll(of: orders).map { ($0.sequence, $0.deliveryCount) })
    }

    /// Opens a store on `directory`, reads the delivery counts of `orders` and closes it.
    func deliveryCounts(afterOpening directory: SharedTemporaryDirectory, options: LMDBStore.Options = .init()) throws -> [UInt64: Int] {
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        defer { store.close() }
        return try deliveryCounts(store)
    }

    /// The bytes of a record with `entries` counts.
    func recordSize(entries: Int) -> Int {
        DeliveryLogRecord.headerSize + entries * DeliveryLogRecord.entrySize
    }

    /// The sizes of `deliveries-a.log` and `deliveries-b.log` (-1 for a missing file).
    func logSizes(_ directory: SharedTemporaryDirectory) -> [Int] {
        DeliveryLog.fileNames.map { name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory.url.appendingPathComponent(name).path)
            return (attributes?[.size] as? Int) ?? -1
        }
    }

    /// Cuts one of the log files of `directory` to `size` bytes.
    func truncate(_ directory: SharedTemporaryDirectory, file: Int, to size: Int) throws {
        let handle = try FileHandle(forWritingTo: directory.url.appendingPathComponent(DeliveryLog.fileNames[file]))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(size))
    }
}
}
