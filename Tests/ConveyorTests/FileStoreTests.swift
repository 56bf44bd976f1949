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
            let recovery = try reopened.open()
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
        let recovery = try reopened.open()
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
        let recovery = try store.open()
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 2])
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
        let recovery = try second.open()
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
            let recovery = try reopened.open()
            #expect(recovery.highestSequence == count)
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

/// Opens the directory, returns what it recovered and closes it again.
private func recover(_ directory: JournalDirectory, _ options: FileStore.Options = .init()) throws -> StoreRecovery {
    let store = FileStore(directory: directory.url, options: options)
    defer { store.close() }
    return try store.open()
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

/// Sequences per key with counts and body texts, comparable across recoveries.
private func summary(_ recovery: StoreRecovery) -> [String: [String]] {
    var result: [String: [String]] = [:]
    for (key, references) in recovery.messages where !references.isEmpty {
        result[key.description] = references.sorted { $0.sequence < $1.sequence }
            .map { "\($0.sequence)/\($0.deliveryCount)/\($0.message.text?.count ?? -1)" }
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
