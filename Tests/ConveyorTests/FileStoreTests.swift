// FileStore-specific behaviour: durability modes, the journal's damage handling (torn tails are
// cut, damage in the middle is an error naming file and offset), the lock file, the index snapshot
// versus a full scan, and compaction. (The conformance and semantic suites run on the file store
// through `StoreKind.file`.)
//
// Crash tests with SIGKILL'd child processes are in CrashRecoveryTests, for both disk stores.
@testable import Conveyor
import Dispatch
import Foundation
import Synchronization
import Testing

extension HeavyTests {
@Suite("File store", .timeLimit(.minutes(2)))
struct FileStoreTests {
    static let durabilities: [FileStore.Durability] = [.sync, .groupCommit, .osBuffered]

    // MARK: Durability modes

    @Test(arguments: durabilities)
    func everyDurabilityModeSurvivesCloseAndReopen(durability: FileStore.Durability) throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: durability)
        let subscription = SubscriptionKey(clientID: "c1", name: "audit")
        do {
            let store = FileStore(directory: directory.url, options: options)
            _ = try store.open()
            try store.commit(StoreBatch([
                .saveSubscription(SubscriptionRecord(key: subscription, topic: "events", selector: "a > 1", noLocal: true, isShared: false)),
                .add(StoredMessage(sequence: 1, message: storedMessage(1), targets: [.queue("orders"), .subscription(subscription)])),
                .add(StoredMessage(sequence: 2, message: storedMessage(2), targets: [.queue("orders")])),
            ]))
            try store.commit(StoreBatch([
                .remove(sequence: 1, from: .queue("orders")),
                .setDeliveryCount(sequence: 2, in: .queue("orders"), count: 3),
            ]))
            store.close()
        }
        // Once from the snapshot of the clean close, once by scanning the journal.
        for scan in [false, true] {
            if scan { directory.removeSnapshot() }
            let reopened = FileStore(directory: directory.url, options: options)
            let recovery = try reopened.openAndReadAll()
            defer { reopened.close() }
            #expect(recovery.highestSequence == 2)
            #expect(recovery.subscriptions.map(\.key) == [subscription])
            #expect(recovery.messages[.queue("orders")]?.map(\.sequence) == [2])
            #expect(recovery.messages[.queue("orders")]?.first?.deliveryCount == 3)
            #expect(recovery.messages[.subscription(subscription)]?.map(\.sequence) == [1])
            #expect(recovery.messages[.subscription(subscription)]?.first?.message.text == "message 1")
        }
    }

    @Test(arguments: durabilities)
    func concurrentCommittersAllLand(durability: FileStore.Durability) throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: durability)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let threads = 8
        let perThread = 50
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                let sequence = UInt64(thread * perThread + index + 1)
                do {
                    try store.commit(StoreBatch([
                        .add(StoredMessage(sequence: sequence, message: storedMessage(sequence), targets: [.queue("q\(thread % 3)")])),
                    ]))
                } catch {
                    failures.withLock { $0.append("\(sequence): \(error)") }
                }
            }
        }
        store.close()
        #expect(failures.withLock { $0 }.isEmpty)
        directory.removeSnapshot()
        let reopened = FileStore(directory: directory.url, options: options)
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        let all = recovery.messages.values.flatMap { $0.map(\.sequence) }
        #expect(Set(all) == Set((1...UInt64(threads * perThread)).map { $0 }))
        #expect(all.count == threads * perThread)
    }

    @Test
    func snapshotAndScanRecoverTheSameState() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let subscription = SubscriptionKey(clientID: nil, name: "shared")
        try store.commit(StoreBatch([.saveSubscription(
            SubscriptionRecord(key: subscription, topic: "t", selector: nil, noLocal: false, isShared: true))]))
        for sequence in UInt64(1)...600 {
            var targets: [StoreQueueKey] = [.queue("q\(sequence % 4)")]
            if sequence % 5 == 0 { targets.append(.subscription(subscription)) }
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 300), targets: targets))]))
            if sequence % 3 == 0 { try store.commit(StoreBatch([.remove(sequence: sequence, from: targets[0])])) }
            if sequence % 7 == 0 { try store.commit(StoreBatch([.setDeliveryCount(sequence: sequence, in: targets[0], count: Int(sequence % 5))])) }
        }
        try store.commit(StoreBatch([.purge(.queue("q1"))]))
        store.close()
        #expect(directory.segmentFiles.count > 2)

        let fromSnapshot = try recover(directory, options)
        directory.removeSnapshot()
        let fromScan = try recover(directory, options)
        #expect(summary(fromSnapshot) == summary(fromScan))
        #expect(fromScan.highestSequence == 600)
        #expect(fromScan.messages[.queue("q1")]?.isEmpty ?? true)
        let expectedInQ2 = (1...600).filter { $0 % 4 == 2 && $0 % 3 != 0 }.count
        #expect(fromScan.messages[.queue("q2")]?.count == expectedInQ2)
    }

    // MARK: Damage

    @Test
    func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        // Continuing over two halves gives the CRC of the whole.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let firstHalf = CRC32.checksum(Array(bytes[..<500]))
        let whole = CRC32.checksum(bytes)
        #expect(CRC32.checksum(Array(bytes[500...]), continuing: firstHalf) == whole)
    }

    @Test(arguments: [1, 7, 19, 25, 60])
    func tornTailIsTruncated(cut: Int) throws {
        let directory = JournalDirectory()
        try writeThreeRecords(directory)
        let segment = try #require(directory.segmentFiles.last)
        let records = try recordOffsets(segment)
        #expect(records.count == 3)
        let size = try fileSize(segment)
        // A crash in the middle of writing the last record: only `cut` bytes of it reached the disk.
        try truncate(segment, to: records[2] + UInt64(cut))
        #expect(try fileSize(segment) < size)

        let store = FileStore(directory: directory.url, options: .init(durability: .sync))
        let recovery = try store.openAndReadAll()
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence) == [1, 2])
        #expect(try fileSize(segment) == records[2])
        // The store goes on from the cut, and what it writes next survives.
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 4, message: storedMessage(4), targets: [.queue("orders")]))]))
        store.close()
        directory.removeSnapshot()
        #expect(try recover(directory).messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 2, 4])
    }

    @Test
    func zeroFilledTailIsTruncated() throws {
        let directory = JournalDirectory()
        try writeThreeRecords(directory)
        let segment = try #require(directory.segmentFiles.last)
        let size = try fileSize(segment)
        try append(segment, [UInt8](repeating: 0, count: 4096))
        let recovery = try recover(directory)
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 2, 3])
        #expect(try fileSize(segment) == size)
    }

    @Test
    func damagedLastRecordIsDetectedByItsCRCAndDropped() throws {
        let directory = JournalDirectory()
        try writeThreeRecords(directory)
        let segment = try #require(directory.segmentFiles.last)
        let records = try recordOffsets(segment)
        // One flipped bit inside the last record's body: nothing after it, so it is a torn write.
        try flipBit(segment, at: records[2] + 40)
        let recovery = try recover(directory)
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 2])
        #expect(try fileSize(segment) == records[2])
    }

    @Test(arguments: [0, 4, 12, 17, 30])
    func damageInTheMiddleIsAnErrorNamingFileAndOffset(byte: Int) async throws {
        let directory = JournalDirectory()
        try writeThreeRecords(directory)
        let segment = try #require(directory.segmentFiles.last)
        let records = try recordOffsets(segment)
        let size = try fileSize(segment)
        try flipBit(segment, at: records[1] + UInt64(byte))

        let store = FileStore(directory: directory.url)
        let error = await expectError(.storage) { try store.open() }
        #expect(error?.message.contains(segment.lastPathComponent) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("offset \(records[1])") == true, "\(error?.message ?? "")")
        // Nothing was cut: the damaged file is left as it was, for a person to look at.
        #expect(try fileSize(segment) == size)
        // And the lock was released: after repair, the store opens.
        try flipBit(segment, at: records[1] + UInt64(byte))
        #expect(try recover(directory).messages[.queue("orders")]?.count == 3)
    }

    @Test
    func damageAtTheEndOfAnOlderSegmentIsAnError() async throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10, compactsAutomatically: false)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        for sequence in UInt64(1)...200 {
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 1000), targets: [.queue("orders")]))]))
        }
        store.close()
        directory.removeSnapshot()
        let segments = directory.segmentFiles
        #expect(segments.count >= 3)
        let first = segments[0]
        let records = try recordOffsets(first)
        let last = try #require(records.last)
        try truncate(first, to: last + 10)
        let error = await expectError(.storage) { try FileStore(directory: directory.url, options: options).open() }
        #expect(error?.message.contains(first.lastPathComponent) == true)
        #expect(error?.message.contains("offset \(last)") == true)
    }

    // MARK: Lock

    @Test
    func secondStoreOnTheDirectoryIsRefusedNamingTheHolder() async throws {
        let directory = JournalDirectory()
        let first = FileStore(directory: directory.url)
        _ = try first.open()
        let second = FileStore(directory: directory.url)
        let error = await expectError(.storage) { try second.open() }
        #expect(error?.message.contains("pid \(getpid())") == true, "\(error?.message ?? "")")
        // The same object cannot be opened twice either.
        await expectError(.storage) { try first.open() }
        #expect(FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("LOCK").path))

        try first.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: storedMessage(1), targets: [.queue("orders")]))]))
        first.close()
        let recovery = try second.openAndReadAll()
        defer { second.close() }
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence) == [1])
    }

    @Test
    func aFileWhereTheDirectoryShouldBeIsAStorageError() async throws {
        let directory = JournalDirectory()
        try Data("x".utf8).write(to: directory.url)
        await expectError(.storage) { try FileStore(directory: directory.url).open() }
    }

    // MARK: Compaction

    @Test
    func compactionReclaimsSegmentsOnceEverythingIsAcknowledged() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10, compactsAutomatically: false)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let subscription = SubscriptionKey(clientID: "c", name: "s")
        try store.commit(StoreBatch([.saveSubscription(
            SubscriptionRecord(key: subscription, topic: "t", selector: "x = 1", noLocal: false, isShared: false))]))
        let count: UInt64 = 2_000
        var batch = StoreBatch()
        for sequence in 1...count {
            batch.append(.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 1024), targets: [.queue("orders")])))
            if batch.operations.count == 50 {
                try store.commit(batch)
                batch = StoreBatch()
            }
        }
        let before = store.journalSize
        let segmentsBefore = directory.segmentFiles.count
        #expect(segmentsBefore > 20)

        // Acknowledge everything but every 100th message, which stays live and must be copied forward.
        batch = StoreBatch()
        for sequence in 1...count where sequence % 100 != 0 {
            batch.append(.remove(sequence: sequence, from: .queue("orders")))
        }
        try store.commit(batch)
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 300, in: .queue("orders"), count: 2)]))
        let deleted = try store.compact()
        let after = store.journalSize
        #expect(deleted >= segmentsBefore - 2)
        #expect(after * 10 < before, "journal \(before) → \(after) bytes")
        #expect(directory.segmentFiles.count <= 3)
        #expect(directory.bytesOnDisk * 10 < before)

        // Acknowledge the rest too; compaction gets down to the last segments.
        try store.commit(StoreBatch((1...count).filter { $0 % 100 == 0 }.map { .remove(sequence: $0, from: .queue("orders")) }))
        store.close()

        for scan in [false, true] {
            if scan { directory.removeSnapshot() }
            let reopened = FileStore(directory: directory.url, options: options)
            let recovery = try reopened.openAndReadAll()
            #expect(recovery.highestSequence == count)
            #expect(recovery.queues.isEmpty)
            let allEmpty = recovery.messages.values.allSatisfy { $0.isEmpty }
            #expect(allEmpty)
            #expect(recovery.subscriptions.map(\.key) == [subscription])
            reopened.close()
        }
    }

    @Test
    func compactedLiveMessagesKeepBodiesCountsAndOrderOfLaterChanges() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10, compactsAutomatically: false)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let audit = StoreQueueKey.subscription(SubscriptionKey(clientID: "c", name: "audit"))
        for sequence in UInt64(1)...400 {
            try store.commit(StoreBatch([.add(StoredMessage(
                sequence: sequence, message: storedMessage(sequence, padding: 800), targets: [.queue("orders"), audit]))]))
        }
        // Leave 1, 2 and 3 live in the oldest segment; acknowledge the rest from both places.
        try store.commit(StoreBatch((4...400).flatMap { [StoreOperation.remove(sequence: $0, from: .queue("orders")), .remove(sequence: $0, from: audit)] }))
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 1, in: .queue("orders"), count: 5), .remove(sequence: 2, from: audit)]))
        #expect(try store.compact() > 0)
        // Changes after compaction apply on top of the copied state, across a reopen by scan.
        try store.commit(StoreBatch([.remove(sequence: 3, from: .queue("orders"))]))
        store.close()
        directory.removeSnapshot()
        let recovery = try recover(directory, options)
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 2])
        #expect(recovery.messages[audit]?.map(\.sequence).sorted() == [1, 3])
        #expect(recovery.messages[.queue("orders")]?.first { $0.sequence == 1 }?.deliveryCount == 5)
        #expect(recovery.messages[audit]?.first { $0.sequence == 3 }?.message.text == storedMessage(3, padding: 800).text)
        #expect(recovery.highestSequence == 400)
    }

    @Test
    func compactionRunsByItselfInTheBackground() async throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        defer { store.close() }
        for sequence in UInt64(1)...1_000 {
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 1024), targets: [.queue("orders")]))]))
        }
        let before = store.journalSize
        for sequence in UInt64(1)...1_000 {
            try store.commit(StoreBatch([.remove(sequence: sequence, from: .queue("orders"))]))
        }
        var after = store.journalSize
        for _ in 0..<100 where after * 4 >= before {
            try await Task.sleep(for: .milliseconds(20))  // poll until background compaction shrinks it (≤ 2 s)
            after = store.journalSize
        }
        #expect(after * 4 < before, "journal \(before) → \(after) bytes")
    }

    // MARK: Paging

    @Test
    func pagesAreAscendingWithDeliveryCountsAfterOutOfOrderAddsAndRemoves() throws {
        let directory = JournalDirectory()
        let store = FileStore(directory: directory.url, options: .init(durability: .osBuffered))
        let recovery = try store.open()
        defer { store.close() }
        #expect(store.pagesMessages)
        #expect(recovery.queues.isEmpty)
        let orders = StoreQueueKey.queue("orders")
        for sequence: UInt64 in [5, 3, 9, 1] {
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence), targets: [orders]))]))
        }
        try store.commit(StoreBatch([
            .setDeliveryCount(sequence: 3, in: orders, count: 2),
            .setDeliveryCount(sequence: 9, in: orders, count: 7),
        ]))
        func page(after: UInt64, limit: Int) throws -> [String] {
            try store.messages(in: orders, after: after, limit: limit).map {
                #expect($0.message.text == "message \($0.sequence)")
                return "\($0.sequence)/\($0.deliveryCount)"
            }
        }
        #expect(try page(after: 0, limit: 10) == ["1/0", "3/2", "5/0", "9/7"])
        #expect(try page(after: 0, limit: 2) == ["1/0", "3/2"])
        #expect(try page(after: 3, limit: 2) == ["5/0", "9/7"])
        #expect(try page(after: 4, limit: 1) == ["5/0"])
        #expect(try page(after: 9, limit: 5) == [])
        #expect(try page(after: 0, limit: 0) == [])

        try store.commit(StoreBatch([.remove(sequence: 3, from: orders), .remove(sequence: 9, from: orders)]))
        #expect(try page(after: 0, limit: 10) == ["1/0", "5/0"])
        #expect(try page(after: 1, limit: 1) == ["5/0"])
        // A sequence added again after its removal comes back in its place.
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 3, message: storedMessage(3), targets: [orders]))]))
        #expect(try page(after: 0, limit: 10) == ["1/0", "3/0", "5/0"])
        #expect(try store.messages(in: .queue("unknown"), after: 0, limit: 10).isEmpty)

        store.close()
        #expect(throws: ConveyorError.self) { try store.messages(in: orders, after: 0, limit: 10) }
    }

    @Test
    func pagesMatchAModelUnderRandomOutOfOrderAddsAndRemoves() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10, compactsAutomatically: false)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        var generator = SplitMix64(seed: 42)
        let queues: [StoreQueueKey] = [.queue("a"), .queue("b"), .subscription(SubscriptionKey(clientID: "c", name: "s"))]
        var model: [StoreQueueKey: [UInt64: Int]] = [:]
        // Sequences arrive mostly ascending, with some held back and committed later.
        let pending = Array(UInt64(1)...3_000)
        var next = 0
        var heldBack: [UInt64] = []
        while next < pending.count || !heldBack.isEmpty {
            var batch = StoreBatch()
            let sequence: UInt64
            if next < pending.count, heldBack.isEmpty || Int.random(in: 0..<4, using: &generator) != 0 {
                sequence = pending[next]
                next += 1
                if Int.random(in: 0..<5, using: &generator) == 0 {
                    heldBack.append(sequence)
                    continue
                }
            } else {
                sequence = heldBack.remove(at: Int.random(in: 0..<heldBack.count, using: &generator))
            }
            let targets = queues.filter { _ in Bool.random(using: &generator) }
            guard !targets.isEmpty else { continue }
            batch.append(.add(StoredMessage(sequence: sequence, message: storedMessage(sequence), targets: targets)))
            for target in targets { model[target, default: [:]][sequence] = 0 }
            // Acknowledge or redeliver some held references.
            for _ in 0..<2 {
                let target = queues.randomElement(using: &generator)!
                guard let victim = model[target]?.keys.randomElement(using: &generator) else { continue }
                if Bool.random(using: &generator) {
                    batch.append(.remove(sequence: victim, from: target))
                    model[target]?[victim] = nil
                } else {
                    let count = Int.random(in: 1..<9, using: &generator)
                    batch.append(.setDeliveryCount(sequence: victim, in: target, count: count))
                    model[target]?[victim] = count
                }
            }
            try store.commit(batch)
        }
        try store.compact()

        func check(_ contents: [StoreQueueKey: [RecoveredMessage]], _ label: String) {
            for queue in queues {
                let expected = (model[queue] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)/\($0.value)" }
                let actual = (contents[queue] ?? []).map { "\($0.sequence)/\($0.deliveryCount)" }
                #expect(actual == expected, "\(label): \(queue)")
            }
        }
        for pageSize in [1, 7, 100, 5_000] {
            var live: [StoreQueueKey: [RecoveredMessage]] = [:]
            for queue in queues { live[queue] = try store.readAll(of: queue, pageSize: pageSize) }
            check(live, "live, pages of \(pageSize)")
        }
        store.close()
        // The summaries count the references and their encoded body bytes.
        var expectedQueues: [StoreQueueKey: StoredQueueSummary] = [:]
        for (queue, references) in model where !references.isEmpty {
            let bytes = references.keys.reduce(0) { $0 + MessageCodec.encode(storedMessage($1)).count }
            expectedQueues[queue] = StoredQueueSummary(count: references.count, bytes: bytes)
        }
        let fromSnapshot = try recover(directory, options)
        check(fromSnapshot.messages, "from the snapshot")
        #expect(fromSnapshot.queues == expectedQueues)
        directory.removeSnapshot()
        let fromScan = try recover(directory, options)
        check(fromScan.messages, "from a scan")
        #expect(fromScan.queues == expectedQueues)
    }

    @Test
    func pagingAfterReopenFromSnapshotAndFromScanIsTheSame() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10, compactsAutomatically: false)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let audit = StoreQueueKey.subscription(SubscriptionKey(clientID: "c", name: "audit"))
        let orders = StoreQueueKey.queue("orders")
        // Descending blocks of ascending sequences, so the index sees plenty out of order.
        for block in stride(from: UInt64(9), through: 0, by: -1) {
            var batch = StoreBatch()
            for sequence in (block * 100 + 1)...(block * 100 + 100) {
                let targets: [StoreQueueKey] = sequence % 3 == 0 ? [orders, audit] : [orders]
                batch.append(.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 200), targets: targets)))
            }
            try store.commit(batch)
        }
        try store.commit(StoreBatch((1...1_000).filter { $0 % 4 == 0 }.map { .remove(sequence: $0, from: orders) }))
        try store.commit(StoreBatch((1...1_000).filter { $0 % 10 == 1 }.map { .setDeliveryCount(sequence: $0, in: orders, count: 3) }))
        // Acknowledging most of the two oldest blocks (about one segment) lets compaction copy the
        // rest forward.
        try store.commit(StoreBatch((801...1_000).filter { $0 % 50 != 0 }.flatMap {
            [StoreOperation.remove(sequence: $0, from: orders), .remove(sequence: $0, from: audit)]
        }))
        #expect(try store.compact() > 0)
        let before = [orders: try store.readAll(of: orders, pageSize: 13), audit: try store.readAll(of: audit, pageSize: 13)]
        store.close()

        let fromSnapshot = try recover(directory, options)
        directory.removeSnapshot()
        let fromScan = try recover(directory, options)
        for queue in [orders, audit] {
            let expected = before[queue]?.map { "\($0.sequence)/\($0.deliveryCount)/\($0.message.text ?? "")" }
            #expect(fromSnapshot.messages[queue]?.map { "\($0.sequence)/\($0.deliveryCount)/\($0.message.text ?? "")" } == expected)
            #expect(fromScan.messages[queue]?.map { "\($0.sequence)/\($0.deliveryCount)/\($0.message.text ?? "")" } == expected)
        }
        #expect(summary(fromSnapshot) == summary(fromScan))
        #expect(fromScan.messages[orders]?.first?.sequence == 1)
        let expectedInOrders = (1...1_000).filter { (sequence: Int) -> Bool in sequence % 4 != 0 && (sequence <= 800 || sequence % 50 == 0) }
        #expect(fromScan.messages[orders]?.count == expectedInOrders.count)
    }

    /// A durable group's records reach the index while the disk writes them: a page read during
    /// the sync does not wait for it and sees the group. A failed sync stops the store.
    @Test
    func aReadDuringASyncSeesTheGroupAndAFailedSyncStopsTheStore() async throws {
        let directory = JournalDirectory()
        let orders = StoreQueueKey.queue("orders")
        enum SyncBehaviour { case normal, held, failing }
        let behaviour = Mutex(SyncBehaviour.normal)
        let inSync = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        var options = FileStore.Options(durability: .sync)
        options.beforeJournalSync = { () throws(ConveyorError) in
            switch behaviour.withLock({ $0 }) {
            case .normal: break
            case .held:
                inSync.signal()
                release.wait()
            case .failing: throw ConveyorError(.storage, "injected sync failure")
            }
        }
        @Sendable func add(_ sequence: UInt64) -> StoreBatch {
            StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence), targets: [orders]))])
        }
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        try store.commit(add(1))
        try store.commit(add(2))

        behaviour.withLock { $0 = .held }
        let committed = Task.detached { try store.commit(StoreBatch([.remove(sequence: 1, from: orders)])) }
        #expect(inSync.wait(timeout: .now() + 5) == .success, "the commit reached its sync")
        #expect(try store.messages(in: orders, after: 0, limit: 10).map(\.sequence) == [2])
        behaviour.withLock { $0 = .normal }
        release.signal()
        try await committed.value

        behaviour.withLock { $0 = .failing }
        #expect(throws: ConveyorError.self) { try store.commit(add(3)) }
        behaviour.withLock { $0 = .normal }
        let later = #expect(throws: ConveyorError.self) { try store.commit(add(4)) }
        #expect(later?.message.contains("injected sync failure") == true, "the store stopped at the failed sync")
        store.close()

        // The failed commit's record was spoiled, so reopening cuts it off; 4 was never written.
        #expect(try recover(directory).messages[orders]?.map(\.sequence) == [2])
    }

    /// Durable commits sync outside the store's lock while delivery records and background
    /// compaction go on. A compaction between a commit's append and its index update would copy
    /// forward a message that commit removes — after the removal — and bring it back on reopen.
    @Test
    func durableCommitsDeliveryRecordsAndCompactionTogetherLoseNothingAndResurrectNothing() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .sync, segmentSize: 64 << 10)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let orders = StoreQueueKey.queue("orders")
        @Sendable func add(_ sequence: UInt64) -> StoreOperation {
            .add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 500), targets: [orders]))
        }
        // A backlog over several segments, then acknowledged oldest first while new messages
        // arrive: each old segment empties commit by commit, and compaction of it starts while
        // the commits removing its last messages are being synced.
        let backlog: UInt64 = 400
        try store.commit(StoreBatch((1...backlog).map(add)))
        let problems = Mutex<[String]>([])
        let acknowledged = Atomic<UInt64>(0)
        let done = Atomic<Bool>(false)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                if worker == 0 {
                    for sequence in 1...backlog {
                        try store.commit(StoreBatch([add(backlog + sequence), .remove(sequence: sequence, from: orders)]))
                        acknowledged.store(sequence, ordering: .releasing)
                    }
                    done.store(true, ordering: .releasing)
                    return
                }
                // A consumer recording the delivery of the next message to acknowledge.
                var recorded: UInt64 = 0
                while !done.load(ordering: .acquiring) {
                    let next = acknowledged.load(ordering: .acquiring) + 1
                    guard next > recorded else { continue }
                    try store.recordDeliveries(StoreBatch([.setDeliveryCount(sequence: next, in: orders, count: 1)]))
                    recorded = next
                }
            } catch {
                problems.withLock { $0.append("\(error)") }
            }
        }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(5) })")
        store.close()

        // Recover by scanning the journal (as after a crash), not from the index snapshot.
        directory.removeSnapshot()
        let reopened = FileStore(directory: directory.url, options: options)
        let contents = try reopened.openAndReadAll(pageSize: 100)
        defer { reopened.close() }
        #expect(contents.messages[orders]?.map(\.sequence) == Array(backlog + 1...2 * backlog))
        // Compaction did run meanwhile: the first segments are gone.
        #expect(!directory.segmentFiles.map(\.lastPathComponent).contains("segment-0000000001.journal"), "\(directory.segmentFiles)")
    }

    @Test
    func pagesReadWhileOtherThreadsCommitAndCompactStayConsistent() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered, segmentSize: 64 << 10)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        defer { store.close() }
        let orders = StoreQueueKey.queue("orders")
        let total: UInt64 = 3_000
        let problems = Mutex<[String]>([])
        let done = Atomic<Bool>(false)
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            do {
                if worker == 0 {
                    // The producer, acknowledging older messages as it goes (which makes compaction run).
                    for sequence in 1...total {
                        var batch = StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 500), targets: [orders]))])
                        if sequence > 50, sequence % 10 != 0 { batch.append(.remove(sequence: sequence - 50, from: orders)) }
                        if sequence % 7 == 0 { batch.append(.setDeliveryCount(sequence: sequence, in: orders, count: 1)) }
                        try store.commit(batch)
                    }
                    done.store(true, ordering: .releasing)
                    return
                }
                // Readers, paging from the start again and again.
                while !done.load(ordering: .acquiring) {
                    var after: UInt64 = 0
                    while true {
                        let page = try store.messages(in: orders, after: after, limit: worker == 1 ? 5 : 64)
                        for message in page {
                            if message.sequence <= after { problems.withLock { $0.append("\(message.sequence) after \(after)") } }
                            if message.message.text != storedMessage(message.sequence, padding: 500).text {
                                problems.withLock { $0.append("wrong body for \(message.sequence)") }
                            }
                            after = message.sequence
                        }
                        if page.count < (worker == 1 ? 5 : 64) { break }
                    }
                }
            } catch {
                problems.withLock { $0.append("\(error)") }
            }
        }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(5) })")
        let expected = (1...total).filter { $0 > total - 50 || $0 % 10 == 0 }
        let all = try store.readAll(of: orders, pageSize: 100)
        #expect(all.map(\.sequence) == expected)
        #expect(all.allSatisfy { $0.deliveryCount == ($0.sequence % 7 == 0 ? 1 : 0) })
    }

    @Test
    func summaryCountsAndBytesSurviveReopen() throws {
        let directory = JournalDirectory()
        let options = FileStore.Options(durability: .osBuffered)
        let store = FileStore(directory: directory.url, options: options)
        _ = try store.open()
        let audit = StoreQueueKey.subscription(SubscriptionKey(clientID: nil, name: "audit"))
        var expected: [StoreQueueKey: StoredQueueSummary] = [:]
        for sequence in UInt64(1)...40 {
            let message = storedMessage(sequence, padding: Int(sequence) * 10)
            let targets: [StoreQueueKey] = sequence % 2 == 0 ? [.queue("even"), audit] : [.queue("odd")]
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: message, targets: targets))]))
            for target in targets where sequence % 5 != 0 {
                expected[target, default: StoredQueueSummary(count: 0, bytes: 0)].count += 1
                expected[target, default: StoredQueueSummary(count: 0, bytes: 0)].bytes += MessageCodec.encode(message).count
            }
            if sequence % 5 == 0 {
                try store.commit(StoreBatch(targets.map { .remove(sequence: sequence, from: $0) }))
            }
        }
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 41, message: storedMessage(41), targets: [.queue("gone")]))]))
        try store.commit(StoreBatch([.purge(.queue("gone"))]))
        store.close()
        for scan in [false, true] {
            if scan { directory.removeSnapshot() }
            let reopened = FileStore(directory: directory.url, options: options)
            let recovery = try reopened.open()
            #expect(recovery.queues == expected, "scan: \(scan)")
            #expect(recovery.queues[.queue("gone")] == nil)
            #expect(recovery.highestSequence == 41)
            reopened.close()
        }
    }

    @Test
    func aBodyThatDoesNotDecodeIsAnErrorNamingFileAndOffset() async throws {
        let directory = JournalDirectory()
        try writeThreeRecords(directory)
        let segment = try #require(directory.segmentFiles.last)
        let records = try recordOffsets(segment)
        // Break the second message's body under a CRC that still checks: opening reads no body and
        // succeeds; reading the page finds it.
        var bytes = [UInt8](try Data(contentsOf: segment))
        let payloadStart = Int(records[1]) + 20
        let payloadEnd = Int(records[2])
        let bodyStart = try #require((payloadStart..<(payloadEnd - 4)).first { position in
            let length = bytes[position..<(position + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
            return position + 4 + length == payloadEnd
        }) + 4
        bytes[bodyStart] ^= 0xFF
        let crc = CRC32.checksum(Array(bytes[payloadStart..<payloadEnd]), continuing: CRC32.checksum(Array(bytes[(payloadStart - 16)..<(payloadStart - 4)])))
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((payloadStart - 4)..<payloadStart, with: $0) }
        try Data(bytes).write(to: segment)

        let store = FileStore(directory: directory.url)
        defer { store.close() }
        let recovery = try store.open()
        #expect(recovery.queues[.queue("orders")]?.count == 3)
        #expect(try store.messages(in: .queue("orders"), after: 0, limit: 1).map(\.sequence) == [1])
        let error = await expectError(.storage) { try store.messages(in: .queue("orders"), after: 0, limit: 10) }
        #expect(error?.message.contains(segment.lastPathComponent) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("offset \(bodyStart)") == true, "\(error?.message ?? "")")
        #expect(try store.messages(in: .queue("orders"), after: 2, limit: 10).map(\.sequence) == [3])
    }

    @Test
    func referenceListMatchesADictionaryUnderRandomChanges() {
        var generator = SplitMix64(seed: 7)
        var list = ReferenceList()
        var model: [UInt64: UInt32] = [:]
        var top: UInt64 = 0
        for step in 0..<40_000 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<4:
                top += UInt64.random(in: 1...3, using: &generator)
                #expect(list.insert(top, deliveryCount: 0) == (model.updateValue(0, forKey: top) == nil))
            case 4:
                // Out of order: somewhere below the top.
                let sequence = UInt64.random(in: 0...top, using: &generator)
                let count = UInt32.random(in: 0..<5, using: &generator)
                #expect(list.insert(sequence, deliveryCount: count) == (model.updateValue(count, forKey: sequence) == nil))
            case 5..<8:
                // Mostly from the front, like acknowledgements.
                let sequence = model.isEmpty ? 0 : (Bool.random(using: &generator) ? model.keys.min()! : model.keys.randomElement(using: &generator)!)
                #expect(list.remove(sequence) == model.removeValue(forKey: sequence))
            case 8:
                let sequence = UInt64.random(in: 0...top + 1, using: &generator)
                list.setDeliveryCount(sequence, to: 9)
                if model[sequence] != nil { model[sequence] = 9 }
            default:
                let sequence = UInt64.random(in: 0...top + 1, using: &generator)
                #expect(list.deliveryCount(of: sequence) == model[sequence])
            }
            if step % 997 == 0 {
                #expect(list.count == model.count)
                var all: [String] = []
                list.forEachLive { all.append("\($0)/\($1)") }
                let expected = model.sorted { $0.key < $1.key }.map { "\($0.key)/\($0.value)" }
                #expect(all == expected)
                let after = UInt64.random(in: 0...top + 1, using: &generator)
                let page: [String] = list.page(after: after, limit: 10).map { "\($0.sequence)/\($0.deliveryCount)" }
                let expectedPage: [String] = Array(model.keys.filter { $0 > after }.sorted().prefix(10).map { "\($0)/\(model[$0]!)" })
                #expect(page == expectedPage)
            }
        }
        #expect(list.count == model.count)
    }
}
}

// MARK: - Helpers

/// A fresh directory path, removed with everything in it when the value goes away.
private final class JournalDirectory {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-file-\(UUID().uuidString)")
    deinit { try? FileManager.default.removeItem(at: url) }

    /// The segment files, oldest first.
    var segmentFiles: [URL] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
            .filter { $0.hasSuffix(".journal") }.sorted().map { url.appendingPathComponent($0) }
    }

    /// The bytes of every segment file.
    var bytesOnDisk: UInt64 { segmentFiles.reduce(0) { $0 + ((try? fileSize($1)) ?? 0) } }

    /// Deletes the index snapshot, so that the next open scans the journal (as after a crash).
    func removeSnapshot() { try? FileManager.default.removeItem(at: url.appendingPathComponent("index.snapshot")) }
}

/// Three commits of one message each, to queue "orders", in sync mode.
private func writeThreeRecords(_ directory: JournalDirectory) throws {
    let store = FileStore(directory: directory.url)
    _ = try store.open()
    for sequence in UInt64(1)...3 {
        try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence, padding: 100), targets: [.queue("orders")]))]))
    }
    store.close()
    directory.removeSnapshot()
}

/// Opens the directory, reads everything it holds (in pages) and closes it again.
private func recover(_ directory: JournalDirectory, _ options: FileStore.Options = .init()) throws -> StoreContents {
    let store = FileStore(directory: directory.url, options: options)
    defer { store.close() }
    return try store.openAndReadAll()
}

/// Where each record of a segment starts, read from the frames (16-byte segment header, then
/// records of a 20-byte header whose bytes 4..<8 are the payload length).
private func recordOffsets(_ file: URL) throws -> [UInt64] {
    let bytes = [UInt8](try Data(contentsOf: file))
    var offsets: [UInt64] = []
    var offset = 16
    while offset + 20 <= bytes.count {
        offsets.append(UInt64(offset))
        let length = bytes[(offset + 4)..<(offset + 8)].reversed().reduce(0) { $0 << 8 | Int($1) }
        offset += 20 + length
    }
    return offsets
}

private func fileSize(_ file: URL) throws -> UInt64 {
    (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.uint64Value ?? 0
}

private func truncate(_ file: URL, to length: UInt64) throws {
    let handle = try FileHandle(forWritingTo: file)
    defer { try? handle.close() }
    try handle.truncate(atOffset: length)
}

private func append(_ file: URL, _ bytes: [UInt8]) throws {
    let handle = try FileHandle(forWritingTo: file)
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(bytes))
}

private func flipBit(_ file: URL, at offset: UInt64) throws {
    var bytes = [UInt8](try Data(contentsOf: file))
    bytes[Int(offset)] ^= 0x10
    try Data(bytes).write(to: file)
}

/// Sequences per key with counts and body texts, and the summaries, comparable across recoveries.
private func summary(_ recovery: StoreContents) -> [String: [String]] {
    var result: [String: [String]] = [:]
    for (key, references) in recovery.messages where !references.isEmpty {
        result[key.description] = references.map { "\($0.sequence)/\($0.deliveryCount)/\($0.message.text ?? "?")" }
    }
    for (key, queue) in recovery.queues {
        result["summary " + key.description] = ["\(queue.count)", "\(queue.bytes)"]
    }
    result["subscriptions"] = recovery.subscriptions.map(\.key.description).sorted()
    result["highest"] = ["\(recovery.highestSequence)"]
    return result
}


/// "message <sequence>" (plus `padding` filler characters) with the headers a producer sets.
private func storedMessage(_ sequence: UInt64, padding: Int = 0) -> Message {
    var message = Message(body: .text("message \(sequence)" + String(repeating: "·", count: padding)))
    message.messageID = MessageID(origin: "file-tests", sequence: sequence)
    message.timestamp = 1_750_000_000_000 + Int64(sequence)
    message.destination = .queue(Queue("orders"))
    return message
}
