// The LMDB store's commit log (Sources/ConveyorLMDB/CommitLog.swift): with one process in a durable
// mode, commits are written to the log and reach LMDB in checkpoints; reads merge the two, and open
// replays what a crash left. A crash is a copy of the store's files taken while the store is open
// (what a process killed at that moment leaves on disk); the SIGKILL tests in CrashRecoveryTests
// run the same recovery with real processes.
@testable import ConveyorLMDB
import Conveyor
import Foundation
import Logging
import Synchronization
import Testing

extension HeavyTests {
@Suite("LMDB commit log", .timeLimit(.minutes(2)))
struct LMDBCommitLogTests {
    let orders = StoreQueueKey.queue("orders")
    let audit = StoreQueueKey.queue("audit")

    @Test(arguments: [LMDBStore.Durability.sync, .groupCommit])
    func commitsGoToTheLogAndACheckpointWritesOnlyTheirNetEffect(durability: LMDBStore.Durability) throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: .init(durability: durability))
        _ = try store.open()
        defer { store.close() }
        // The first message to a queue gives it a destination ID: a direct LMDB write.
        try store.commit(add(1...3))
        let before = try #require(store.lastTransactionIDForTesting())
        #expect(store.commitLogStateForTesting() == (0, true))

        try store.commit(add(4...6))
        try store.commit(StoreBatch([.remove(sequence: 4, from: orders), .remove(sequence: 1, from: orders)]))
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 5, in: orders, count: 2)]))
        #expect(store.lastTransactionIDForTesting() == before, "no LMDB transaction for logged commits")
        #expect(store.commitLogStateForTesting().logBytes > 0)
        #expect(try sequencesAndCounts(store) == [2: 0, 3: 0, 5: 2, 6: 0], "reads merge the log's changes")

        try store.checkpointForTesting()
        #expect(store.lastTransactionIDForTesting() == before + 1, "one transaction for all of them")
        #expect(store.commitLogStateForTesting() == (0, true))
        #expect(try sequencesAndCounts(store) == [2: 0, 3: 0, 5: 2, 6: 0])

        store.close()
        let contents = try LMDBStore(directory: directory.url).openAndReadAll()
        #expect(contents.messages[orders].map { $0.map(\.sequence) } == [2, 3, 5, 6])
        #expect(contents.highestSequence == 6)
    }

    @Test
    func readsGoOnWhileACommitSyncsItsRecord() async throws {
        let directory = SharedTemporaryDirectory()
        let inSync = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holding = Mutex(false)
        var options = LMDBStore.Options()
        options.beforeCommitLogSync = {
            guard holding.withLock({ $0 }) else { return }
            inSync.signal()
            release.wait()
        }
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        defer { store.close() }
        try store.commit(add(1...1))
        try store.commit(add(2...2))

        holding.withLock { $0 = true }
        let committed = Task.detached { try store.commit(StoreBatch([.remove(sequence: 1, from: self.orders)])) }
        #expect(inSync.wait(timeout: .now() + 5) == .success, "the commit reached its sync")
        // The commit is held in its sync: a read does not wait for it. Its changes were applied
        // while the disk wrote the record (the broker keeps a committing send's message out of
        // what a page read returns).
        #expect(try store.messages(in: orders, after: 0, limit: 10).map(\.sequence) == [2])
        holding.withLock { $0 = false }
        release.signal()
        try await committed.value
        #expect(try store.messages(in: orders, after: 0, limit: 10).map(\.sequence) == [2])
    }

    /// A store whose page reads can be held inside their read transaction, outside the store's lock.
    final class HeldReads: Sendable {
        let holding = Mutex(false)
        let reading = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        func options(_ base: LMDBStore.Options = LMDBStore.Options()) -> LMDBStore.Options {
            var options = base
            options.duringUnlockedRead = { [self] in
                guard holding.withLock({ held in defer { held = false }; return held }) else { return }
                reading.signal()
                release.wait()
            }
            return options
        }

        /// Starts a read of `queue` on a thread of its own that stops in its transaction; returns
        /// once it is there.
        func startHeldRead(of queue: StoreQueueKey, in store: LMDBStore) -> OnThread<[UInt64]> {
            holding.withLock { $0 = true }
            let read = OnThread { try store.messages(in: queue, after: 0, limit: 100).map(\.sequence) }
            #expect(reading.wait(timeout: .now() + 5) == .success, "the read reached its transaction")
            return read
        }
    }

    /// Work run on a thread of its own (blocking work must not take the test's cooperative threads).
    final class OnThread<Value: Sendable>: Sendable {
        private let result = Mutex<Result<Value, any Error>?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(_ work: @escaping @Sendable () throws -> Value) {
            Thread.detachNewThread { [self] in
                let outcome = Result { try work() }
                result.withLock { $0 = outcome }
                done.signal()
            }
        }

        /// Waits (at most `seconds`) for the work to finish; `nil` if it has not.
        func value(within seconds: Int = 5) throws -> Value? {
            guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
            done.signal()
            return try result.withLock { $0 }?.get()
        }
    }

    @Test
    func aCommitGoesOnWhileAPageIsReadAndTheReadMergesWhatItCommitted() throws {
        let reads = HeldReads()
        let (_, store) = try openStoreHoldingMessage1(options: reads.options())
        defer { store.close() }
        try store.commit(add(2...10))
        let read = reads.startHeldRead(of: orders, in: store)
        // The read holds no lock: commits go on (they would wait for the read before).
        let (eleven, two) = (add(11...11), StoreBatch([.remove(sequence: 2, from: orders)]))
        let committed = OnThread {
            try store.commit(eleven)
            try store.commit(two)
        }
        #expect(try committed.value() != nil, "the commits finished while the read was held")
        reads.release.signal()
        // The database part was read before the commits; their changes are merged in.
        #expect(try read.value() == [1] + Array(3...11))
    }

    @Test
    func aPageReadThatACheckpointOvertookIsReadAgainUnderTheLock() throws {
        let reads = HeldReads()
        let (_, store) = try openStoreHoldingMessage1(options: reads.options())
        defer { store.close() }
        try store.commit(add(2...10))
        let read = reads.startHeldRead(of: orders, in: store)
        // The read's snapshot holds message 1 only; the checkpoint moves 2...10 from the pending
        // changes into the database. Merged with the pending changes left (none), the snapshot
        // would lose them.
        try store.checkpointForTesting()
        #expect(store.commitLogStateForTesting().pendingIsEmpty)
        reads.release.signal()
        #expect(try read.value() == Array(1...10))
    }

    @Test
    func theMapGrowsOnlyOnceAPageReadWithoutTheLockHasEnded() throws {
        let reads = HeldReads()
        let growthWaits = DispatchSemaphore(value: 0)
        var options = LMDBStore.Options(initialMapSize: 256 << 10)
        options.onWaitForUnlockedReads = { growthWaits.signal() }
        let (_, store) = try openStoreHoldingMessage1(options: reads.options(options))
        defer { store.close() }
        let read = reads.startHeldRead(of: orders, in: store)
        // 512 KiB of bodies do not fit the 256 KiB map: the checkpoint that writes them into the
        // database grows the map, which LMDB allows only while no transaction of the process is
        // active, so it waits for the read.
        let big = Message(body: .bytes(Data(repeating: 7, count: 64 << 10)))
        let orders = orders
        let commit = OnThread {
            try store.commit(StoreBatch((2...9).map { .add(StoredMessage(sequence: $0, message: big, targets: [orders])) }))
            try store.checkpointForTesting()
        }
        #expect(growthWaits.wait(timeout: .now() + 5) == .success, "the growth waits for the read")
        reads.release.signal()
        #expect(try commit.value() != nil)
        // The read ended after the checkpoint (its snapshot older than it): it read again.
        #expect(try read.value() == Array(1...9))
        #expect(try sequencesAndCounts(store).keys.sorted() == Array(1...9))
    }

    @Test
    func aFailedSyncStopsTheStoreAndTheNextOpenHasOnlyTheCommitsBeforeIt() throws {
        let directory = SharedTemporaryDirectory()
        let failing = Mutex(false)
        var options = LMDBStore.Options()
        options.beforeCommitLogSync = { () throws(ConveyorError) in
            if failing.withLock({ $0 }) { throw ConveyorError(.storage, "injected sync failure") }
        }
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        try store.commit(add(1...1))
        try store.commit(add(2...2))
        failing.withLock { $0 = true }
        let failure = #expect(throws: ConveyorError.self) { try store.commit(self.add(3...3)) }
        #expect(failure?.code == .storage)
        #expect(failure?.message.contains("stops writing until it is closed and opened again") == true)
        failing.withLock { $0 = false }
        // Whether record 3 reached the disk is unknown and it is applied in memory: nothing more
        // is written, not even at close, which would make it durable.
        let later = #expect(throws: ConveyorError.self) { try store.commit(self.add(4...4)) }
        #expect(later?.message.contains("injected sync failure") == true)
        store.close()

        let contents = try LMDBStore(directory: directory.url).openAndReadAll()
        #expect(contents.messages[orders].map { $0.map(\.sequence) } == [1, 2], "the failed commit's record was spoiled")
    }

    @Test
    func aCheckpointRemovesThousandsOfReferencesAndTheirBodiesButASharedBodyOnlyWithItsLast() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...2, to: [audit]))    // gives audit its destination ID
        try store.commit(add(3...5000))
        try store.checkpointForTesting()
        #expect(try store.databaseEntriesForTesting() == (references: 5000, bodies: 5000))

        // A drained backlog, no body shared: most of orders, in order, in one checkpoint.
        try store.commit(StoreBatch([1, 3].map { .remove(sequence: $0, from: orders) }))
        try store.commit(StoreBatch((4...4000).map { .remove(sequence: $0, from: orders) }))
        try store.checkpointForTesting()
        #expect(try store.databaseEntriesForTesting() == (references: 1001, bodies: 1001))
        #expect(try store.messages(in: orders, after: 0, limit: 1).first?.message.text == "message 4001")

        // With a body shared by two queues, it goes only with its last reference.
        try store.commit(add(5001...5001, to: [orders, audit]))
        try store.checkpointForTesting()
        try store.commit(StoreBatch((4001...5001).map { .remove(sequence: $0, from: orders) }))
        try store.checkpointForTesting()
        #expect(try store.databaseEntriesForTesting() == (references: 2, bodies: 2), "audit keeps 2 and 5001")
        #expect(try store.messages(in: audit, after: 2, limit: 10).first?.message.text == "message 5001")
        try store.commit(StoreBatch([.remove(sequence: 5001, from: audit)]))
        try store.checkpointForTesting()
        #expect(try store.databaseEntriesForTesting() == (references: 1, bodies: 1))

        store.close()
        let contents = try LMDBStore(directory: directory.url).openAndReadAll()
        #expect(contents.messages[orders] == nil)
        #expect(contents.messages[audit].map { $0.map(\.sequence) } == [2])
    }

    @Test
    func aSequenceConsumedBeforeACheckpointIsStillNeverReused() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        try store.commit(add(2...9))
        try store.commit(StoreBatch((1...9).map { .remove(sequence: $0, from: orders) }))
        let crashed = try crashCopy(of: directory)
        store.close()
        #expect(try LMDBStore(directory: directory.url).openAndReadAll().highestSequence == 9)
        let recovered = try LMDBStore(directory: crashed.url).openAndReadAll()
        #expect(recovered.highestSequence == 9)
        #expect(recovered.messages[orders] == nil)
    }

    @Test
    func aCrashReplaysTheLoggedCommitsOnce() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        defer { store.close() }
        try store.commit(add(1...5, to: [orders, audit]))
        try store.commit(add(6...8, to: [orders, audit]))
        try store.commit(StoreBatch([
            .remove(sequence: 1, from: orders), .remove(sequence: 6, from: orders), .remove(sequence: 6, from: audit),
            .setDeliveryCount(sequence: 7, in: orders, count: 3),
        ]))
        #expect(store.commitLogStateForTesting().logBytes > 0)
        let crashed = try crashCopy(of: directory)

        for _ in 1...2 {
            let recovered = LMDBStore(directory: crashed.url)
            let contents = try recovered.openAndReadAll()
            #expect(recovered.commitLogStateForTesting() == (0, true), "open writes the log into the database")
            #expect(contents.messages[orders].map { $0.map(\.sequence) } == [2, 3, 4, 5, 7, 8])
            #expect(contents.messages[audit].map { $0.map(\.sequence) } == [1, 2, 3, 4, 5, 7, 8])
            #expect(contents.messages[orders]?.first { $0.sequence == 7 }?.deliveryCount == 3)
            #expect(contents.messages[orders]?.first { $0.sequence == 7 }?.message.text == "message 7")
            recovered.close()
        }
    }

    @Test
    func theLogIsFilledWithZerosAheadOfItsRecordsAndAReplayStopsAtThem() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...4))
        let logBytes = store.commitLogStateForTesting().logBytes
        let file = try Data(contentsOf: directory.url.appendingPathComponent(CommitLog.fileName))
        // Records then written over allocated blocks sync data only, without the file's size.
        #expect(file.count >= logBytes + CommitLog.preallocationStep)
        #expect(file[logBytes...].allSatisfy { $0 == 0 })

        try store.commit(add(5...5))
        #expect(try Data(contentsOf: directory.url.appendingPathComponent(CommitLog.fileName)).count == file.count,
                "the next record goes into the zeros")
        let crashed = try crashCopy(of: directory)
        let contents = try LMDBStore(directory: crashed.url).openAndReadAll()
        #expect(contents.messages[orders].map { $0.map(\.sequence) } == [1, 2, 3, 4, 5])
    }

    @Test
    func aCommitIsTakenWithoutBlockingOnlyByAGroupWaitingForIt() throws {
        let (_, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        // No group commit is waiting for a committer: the caller must commit on a thread that may
        // block, and nothing was stored.
        #expect(!store.commitWithoutBlocking(add(2...2)) { _ in Issue.record("a batch not taken was completed") })
        #expect(try sequencesAndCounts(store) == [1: 0])
        #expect(!MemoryStore().commitWithoutBlocking(add(2...2)) { _ in Issue.record("the memory store took a batch") })
    }

    @Test
    func recordsOfAnEpochAlreadyCheckpointedAreNotReplayed() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...40))
        try store.checkpointForTesting()
        // The next epoch's first record is written over the start of the file, shorter than the
        // records of the epoch checkpointed: those follow it, and must not come back.
        try store.commit(StoreBatch([.remove(sequence: 2, from: orders)]))
        let fileSize = try #require(try FileManager.default.attributesOfItem(
            atPath: directory.url.appendingPathComponent(CommitLog.fileName).path)[.size] as? Int)
        #expect(fileSize > store.commitLogStateForTesting().logBytes)

        let crashed = try crashCopy(of: directory)
        let contents = try LMDBStore(directory: crashed.url).openAndReadAll()
        #expect(contents.messages[orders].map { $0.map(\.sequence) } == [1] + Array(3...40))
    }

    @Test
    func aTornOrDamagedRecordEndsTheLog() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...3))
        let firstRecord = store.commitLogStateForTesting().logBytes
        try store.commit(add(4...5))

        // The last record torn: the commit before it survives.
        let torn = try crashCopy(of: directory)
        try truncate(torn, CommitLog.fileName, to: store.commitLogStateForTesting().logBytes - 3)
        #expect(try LMDBStore(directory: torn.url).openAndReadAll().messages[orders].map { $0.map(\.sequence) } == [1, 2, 3])

        // A damaged byte in the first record: nothing from it on is replayed.
        let damaged = try crashCopy(of: directory)
        let path = damaged.url.appendingPathComponent(CommitLog.fileName)
        var bytes = try Data(contentsOf: path)
        bytes[firstRecord - 2] ^= 0xFF
        try bytes.write(to: path)
        #expect(try LMDBStore(directory: damaged.url).openAndReadAll().messages[orders].map { $0.map(\.sequence) } == [1])
    }

    @Test
    func pagesMergeTheDatabaseWithTheLogInSequenceOrder() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close(); withExtendedLifetime(directory) {} }
        try store.commit(add(2...10))
        try store.checkpointForTesting()
        try store.commit(StoreBatch([
            .remove(sequence: 2, from: orders), .remove(sequence: 3, from: orders), .remove(sequence: 9, from: orders),
            .setDeliveryCount(sequence: 5, in: orders, count: 1),
        ]))
        try store.commit(add(11...12))
        try store.recordDeliveries(StoreBatch([.setDeliveryCount(sequence: 6, in: orders, count: 4)]))

        func page(after sequence: UInt64, limit: Int) throws -> [UInt64: Int] {
            let page = try store.messages(in: orders, after: sequence, limit: limit)
            return Dictionary(uniqueKeysWithValues: page.map { ($0.sequence, $0.deliveryCount) })
        }
        #expect(try store.messages(in: orders, after: 0, limit: 3).map(\.sequence) == [1, 4, 5])
        #expect(try page(after: 0, limit: 3) == [1: 0, 4: 0, 5: 1])
        #expect(try store.messages(in: orders, after: 5, limit: 3).map(\.sequence) == [6, 7, 8])
        #expect(try page(after: 5, limit: 3)[6] == 4, "a recorded delivery counts as well")
        #expect(try store.messages(in: orders, after: 8, limit: 10).map(\.sequence) == [10, 11, 12], "fewer than the limit: the end")
        #expect(try store.messages(in: orders, after: 10, limit: 1).map(\.sequence) == [11])
    }

    @Test(arguments: [LMDBStore.Options(sharing: .processes), LMDBStore.Options(durability: .osBuffered)])
    func aStoreThatDoesNotLogCommitsAppliesWhatALoggingStoreLeftAndRemovesTheFile(options: LMDBStore.Options) throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...4))
        try store.commit(StoreBatch([.remove(sequence: 1, from: orders)]))
        let crashed = try crashCopy(of: directory)

        let other = LMDBStore(directory: crashed.url, options: options)
        let contents = try other.openAndReadAll()
        defer { other.close() }
        #expect(contents.messages[orders].map { $0.map(\.sequence) } == [2, 3, 4])
        #expect(!FileManager.default.fileExists(atPath: crashed.url.appendingPathComponent(CommitLog.fileName).path))
        try other.commit(StoreBatch([.remove(sequence: 2, from: orders)]))
        #expect(try other.readAll(of: orders).map(\.sequence) == [3, 4])
    }

    @Test
    func aCommitTakesTheLoggedDeliveryCountsExceptForTheReferencesItRemoves() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        defer { store.close() }
        try store.commit(add(2...6))
        try store.checkpointForTesting()
        try store.recordDeliveries(StoreBatch((2...4).map { .setDeliveryCount(sequence: $0, in: orders, count: 1) }))

        // Consumed: 2 and 3; message 4 was delivered and not yet acknowledged.
        try store.commit(StoreBatch([.remove(sequence: 2, from: orders), .remove(sequence: 3, from: orders)]))
        // One record: its header (16 bytes), two removals (17 each), one raised count (21) and the
        // folded generation (9); no counts for 2 and 3.
        #expect(store.commitLogStateForTesting().logBytes == 16 + 2 * 17 + 21 + 9)
        #expect(store.deliveryLog.overlayCountForTesting == 0, "the delivery log is folded")
        let crashed = try crashCopy(of: directory)
        let recovered = try LMDBStore(directory: crashed.url).openAndReadAll()
        #expect(recovered.messages[orders].map { $0.map { [$0.sequence, UInt64($0.deliveryCount)] } } == [[1, 0], [4, 1], [5, 0], [6, 0]])
    }

    @Test
    func aLogBesideADatabaseItDoesNotBelongToIsSetAsideNotReplayed() throws {
        let (directory, store) = try openStoreHoldingMessage1()
        try store.commit(add(2...3))
        let crashed = try crashCopy(of: directory)
        store.close()
        // The data file deleted to start afresh, the commit log left behind.
        try FileManager.default.removeItem(at: crashed.url.appendingPathComponent("data.mdb"))

        let (logger, records) = RecordingLogHandler.logger()
        let fresh = LMDBStore(directory: crashed.url, options: .init(logger: logger))
        let contents = try fresh.openAndReadAll()
        #expect(contents.messages.isEmpty, "nothing of the other database's log was replayed")
        #expect(records.messages(atLeast: .warning).contains { $0.contains("does not belong to this database") })
        #expect(FileManager.default.fileExists(atPath: crashed.url.appendingPathComponent(CommitLog.fileName + ".orphaned").path))

        // The new database's own log is trusted from then on.
        try fresh.commit(add(5...5))
        try fresh.commit(add(6...6))
        let again = try crashCopy(of: crashed)
        fresh.close()
        #expect(try LMDBStore(directory: again.url).openAndReadAll().messages[orders].map { $0.map(\.sequence) } == [5, 6])
    }

    @Test
    func aRecordRoundTripsEveryOperationAndReadingStopsAtAnotherEpoch() throws {
        let message = Message(body: .text("hello"))
        let operations: [LoggedOperation] = [
            .add(sequence: 7, message: message, encoded: ArraySlice(MessageCodec.encode(message)), destinations: [1, 2]),
            .remove(sequence: 3, destination: 1),
            .setDeliveryCount(sequence: 7, destination: 2, count: 5),
            .raiseDeliveryCount(sequence: 8, destination: 1, count: 9),
            .foldedDeliveries(generation: 12),
        ]
        var file: [UInt8] = []
        CommitLogRecord.encode(operations, epoch: 4, into: &file)
        let firstLength = file.count
        CommitLogRecord.encode([.remove(sequence: 4, destination: 1)], epoch: 4, into: &file)
        CommitLogRecord.encode([.remove(sequence: 5, destination: 1)], epoch: 3, into: &file)

        var read: [[LoggedOperation]] = []
        let valid = try file.withUnsafeBytes { try CommitLogRecord.read($0, epoch: 4) { read.append($0) } }
        #expect(read.count == 2, "the record of epoch 3 that follows is not read")
        #expect(valid < file.count)
        #expect(read.first.map(describe) == describe(operations))
        #expect(read.last.map(describe) == ["remove 4 from 1"])
        #expect(try file.withUnsafeBytes { try CommitLogRecord.read($0, epoch: 5) { _ in } } == 0)
        #expect(try file.withUnsafeBytes { try CommitLogRecord.read(UnsafeRawBufferPointer(rebasing: $0[..<(firstLength - 1)]), epoch: 4) { _ in } } == 0)
    }

    // MARK: Helpers

    /// A new directory with an open store (in `.sync` mode) holding message 1 in `orders`: that
    /// first commit to the queue gave it a destination ID (a direct LMDB write), so the next
    /// commits go to the commit log.
    func openStoreHoldingMessage1(options: LMDBStore.Options = LMDBStore.Options()) throws -> (SharedTemporaryDirectory, LMDBStore) {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        try store.commit(add(1...1))
        return (directory, store)
    }

    func add(_ sequences: ClosedRange<UInt64>, to targets: [StoreQueueKey]? = nil) -> StoreBatch {
        StoreBatch(sequences.map { sequence in
            .add(StoredMessage(sequence: sequence, message: Message(body: .text("message \(sequence)")), targets: targets ?? [orders]))
        })
    }

    func sequencesAndCounts(_ store: LMDBStore) throws -> [UInt64: Int] {
        Dictionary(uniqueKeysWithValues: try store.readAll(of: orders, pageSize: 2).map { ($0.sequence, $0.deliveryCount) })
    }

    func truncate(_ directory: SharedTemporaryDirectory, _ name: String, to size: Int) throws {
        let handle = try FileHandle(forWritingTo: directory.url.appendingPathComponent(name))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(size))
    }

    func describe(_ operations: [LoggedOperation]) -> [String] {
        operations.map { operation in
            switch operation {
            case .add(let sequence, let message, let encoded, let destinations):
                "add \(sequence) \(message.text ?? "") (\(encoded.count) bytes) to \(destinations)"
            case .remove(let sequence, let destination): "remove \(sequence) from \(destination)"
            case .setDeliveryCount(let sequence, let destination, let count): "set \(sequence) in \(destination) to \(count)"
            case .raiseDeliveryCount(let sequence, let destination, let count): "raise \(sequence) in \(destination) to \(count)"
            case .foldedDeliveries(let generation): "folded \(generation)"
            }
        }
    }
}
}
