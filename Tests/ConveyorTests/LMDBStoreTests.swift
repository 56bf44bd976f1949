// LMDB-specific behaviour: durability modes, map growth, errors for directories that cannot be
// used, the in-process single-open rule, and the message codec's rejection of damaged input.
// (The conformance and semantic suites run on LMDB through `StoreKind.lmdb`.)
//
// Crash tests with SIGKILL'd child processes are in CrashRecoveryTests, for both disk stores.
@testable import Conveyor
import ConveyorLMDB
import Dispatch
import Foundation
import Synchronization
import Testing

extension HeavyTests {
@Suite("LMDB store", .timeLimit(.minutes(2)))
struct LMDBStoreTests {
    static let durabilities: [LMDBStore.Durability] = [.sync, .groupCommit, .osBuffered]

    // MARK: Durability modes

    @Test(arguments: durabilities)
    func everyDurabilityModeSurvivesCloseAndReopen(durability: LMDBStore.Durability) throws {
        let directory = TemporaryDirectory()
        let options = LMDBStore.Options(durability: durability)
        let subscription = SubscriptionKey(clientID: "c1", name: "audit")
        do {
            let store = LMDBStore(directory: directory.url, options: options)
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
        let reopened = LMDBStore(directory: directory.url, options: options)
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        #expect(recovery.highestSequence == 2)
        #expect(recovery.subscriptions.map(\.key) == [subscription])
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence) == [2])
        #expect(recovery.messages[.queue("orders")]?.first?.deliveryCount == 3)
        #expect(recovery.messages[.subscription(subscription)]?.map(\.sequence) == [1])
        #expect(recovery.messages[.subscription(subscription)]?.first?.message.text == "message 1")
    }

    @Test(arguments: durabilities)
    func concurrentCommittersAllLand(durability: LMDBStore.Durability) throws {
        let directory = TemporaryDirectory()
        let options = LMDBStore.Options(durability: durability)
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        let threads = 8
        let perThread = 50
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                let sequence = UInt64(thread * perThread + index + 1)
                let queue = StoreQueueKey.queue("q\(thread % 3)")
                do {
                    try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: storedMessage(sequence), targets: [queue]))]))
                    if index % 2 == 0 {
                        try store.commit(StoreBatch([.remove(sequence: sequence, from: queue)]))
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        store.close()

        let reopened = LMDBStore(directory: directory.url, options: options)
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        let kept = recovery.messages.values.flatMap { $0 }
        #expect(kept.count == threads * perThread / 2)
        #expect(kept.allSatisfy { $0.message.text == "message \($0.sequence)" })
        #expect(recovery.highestSequence == UInt64(threads * perThread))
    }

    // MARK: Map size

    @Test
    func theMapGrowsWhenFull() throws {
        let directory = TemporaryDirectory()
        let options = LMDBStore.Options(initialMapSize: 64 << 10)
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        // 10 bodies of 1 MiB in separate commits, then one batch of 2,000 small messages: far past 64 KiB.
        for sequence in UInt64(1)...10 {
            let body = Data(repeating: UInt8(sequence), count: 1 << 20)
            try store.commit(StoreBatch([.add(StoredMessage(sequence: sequence, message: Message(body: .bytes(body)), targets: [.queue("big")]))]))
        }
        try store.commit(StoreBatch((UInt64(11)...2_010).map {
            .add(StoredMessage(sequence: $0, message: storedMessage($0), targets: [.queue("small")]))
        }))
        store.close()

        let reopened = LMDBStore(directory: directory.url, options: options)
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        #expect(recovery.messages[.queue("big")]?.count == 10)
        #expect(recovery.messages[.queue("big")]?.allSatisfy { $0.message.bytes?.count == 1 << 20 } == true)
        #expect(recovery.messages[.queue("small")]?.count == 2_000)
    }

    @Test
    func aFullMapAtItsMaximumIsAResourceErrorAndKeepsWhatWasCommitted() async throws {
        let directory = TemporaryDirectory()
        let options = LMDBStore.Options(initialMapSize: 1 << 20, maximumMapSize: 2 << 20)
        let store = LMDBStore(directory: directory.url, options: options)
        _ = try store.open()
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: storedMessage(1), targets: [.queue("orders")]))]))

        let huge = Message(body: .bytes(Data(repeating: 7, count: 4 << 20)))
        let error = await expectError(.resourceAllocation) {
            try store.commit(StoreBatch([
                .remove(sequence: 1, from: .queue("orders")),
                .add(StoredMessage(sequence: 2, message: huge, targets: [.queue("orders")])),
            ]))
        }
        #expect(error?.message.contains("maximum map size") == true)

        // Nothing of the failed batch was applied, and the store keeps working.
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 3, message: storedMessage(3), targets: [.queue("orders")]))]))
        store.close()
        let reopened = LMDBStore(directory: directory.url, options: options)
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        #expect(recovery.messages[.queue("orders")]?.map(\.sequence).sorted() == [1, 3])
        #expect(recovery.highestSequence == 3)
    }

    @Test
    func aFanOutBodyIsStoredOnce() throws {
        let directory = TemporaryDirectory()
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        let subscriptions = (0..<20).map { StoreQueueKey.subscription(SubscriptionKey(clientID: "c", name: "s\($0)")) }
        let body = Data(repeating: 42, count: 2 << 20)
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: Message(body: .bytes(body)), targets: subscriptions))]))
        store.close()
        let size = try #require(
            FileManager.default.attributesOfItem(atPath: directory.url.appendingPathComponent("data.mdb").path)[.size] as? Int)
        #expect(size < 4 << 20, "data.mdb is \(size) bytes for one 2 MiB body referenced 20 times")

        // Acknowledging all but one reference keeps the body; the last one removes it.
        let reopened = LMDBStore(directory: directory.url)
        _ = try reopened.open()
        try reopened.commit(StoreBatch(subscriptions.dropLast().map { .remove(sequence: 1, from: $0) }))
        reopened.close()
        let again = LMDBStore(directory: directory.url)
        var recovery = try again.openAndReadAll()
        #expect(recovery.messages.values.flatMap { $0 }.map(\.sequence) == [1])
        #expect(recovery.messages[subscriptions[19]]?.first?.message.bytes == body)
        try again.commit(StoreBatch([.remove(sequence: 1, from: subscriptions[19])]))
        again.close()
        let last = LMDBStore(directory: directory.url)
        recovery = try last.openAndReadAll()
        defer { last.close() }
        #expect(recovery.messages.values.allSatisfy { $0.isEmpty })
    }

    // MARK: Errors

    @Test
    func aDirectoryThatIsAFileIsAStorageErrorNamingThePath() async throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        let file = directory.url.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: file)

        let error = await expectError(.storage) { try LMDBStore(directory: file).open() }
        #expect(error?.message.contains(file.path) == true, "\(error?.message ?? "")")

        let below = file.appendingPathComponent("store")
        let belowError = await expectError(.storage) { try LMDBStore(directory: below).open() }
        #expect(belowError?.message.contains(below.path) == true, "\(belowError?.message ?? "")")
    }

    @Test(.enabled(if: geteuid() != 0, "root can write anywhere"))
    func anUnwritableDirectoryIsAStorageErrorNamingThePath() async throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: directory.url.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.url.path) }

        let error = await expectError(.storage) { try LMDBStore(directory: directory.url).open() }
        #expect(error?.message.contains(directory.url.lastPathComponent) == true, "\(error?.message ?? "")")
    }

    @Test
    func aDamagedDataFileIsAStorageErrorNamingThePath() async throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        try Data((0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            .write(to: directory.url.appendingPathComponent("data.mdb"))

        let error = await expectError(.storage) { try LMDBStore(directory: directory.url).open() }
        #expect(error?.message.contains(directory.url.lastPathComponent) == true, "\(error?.message ?? "")")
        // The failed open released the directory: once the file is gone, a store opens there.
        try FileManager.default.removeItem(at: directory.url.appendingPathComponent("data.mdb"))
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        store.close()
    }

    @Test
    func aSecondStoreOnAnOpenDirectoryIsRefusedUntilTheFirstCloses() async throws {
        let directory = TemporaryDirectory()
        let first = LMDBStore(directory: directory.url)
        _ = try first.open()

        let error = await expectError(.storage) { try LMDBStore(directory: directory.url).open() }
        #expect(error?.message.contains(directory.url.lastPathComponent) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("already open") == true)
        // The same directory through another spelling is the same directory.
        let spelled = directory.url.path + "/./"
        await expectError(.storage) { try LMDBStore(directory: spelled).open() }
        // And the same object cannot open twice.
        await expectError(.storage) { try first.open() }

        try first.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: storedMessage(1), targets: [.queue("q")]))]))
        first.close()
        let second = LMDBStore(directory: directory.url)
        let recovery = try second.openAndReadAll()
        defer { second.close() }
        #expect(recovery.messages[.queue("q")]?.map(\.sequence) == [1])
    }

    @Test
    func aStoreThatGoesAwayReleasesItsDirectory() throws {
        let directory = TemporaryDirectory()
        do {
            let store = LMDBStore(directory: directory.url)
            _ = try store.open()
        }
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        store.close()
    }

    // MARK: Codec

    @Test
    func theCodecRoundTripsAndRejectsEveryTruncation() async throws {
        var message = Message(body: .map(["k": .string("v"), "n": .int64(-5), "b": .bytes(Data([0, 1]))]))
        message.messageID = MessageID(origin: "origin", sequence: 99)
        message.timestamp = 1_750_000_000_000
        message.destination = .topic(Topic("prices"))
        message.replyTo = .queue(Queue(temporaryName: "temp-1"))
        message.correlationID = "corr"
        message.type = "t"
        message.priority = 7
        message.expiration = -1
        message.deliveryCount = 2
        message.redelivered = true
        try message.setProperty("EU", forName: "region")
        try message.setProperty(Double.nan, forName: "ratio")

        let bytes = MessageCodec.encode(message)
        let decoded = try MessageCodec.decodeMessage(bytes)
        #expect(decoded.body == message.body)
        #expect(decoded.messageID == message.messageID)
        #expect(decoded.replyTo?.isTemporary == true)
        #expect(decoded.redelivered && decoded.deliveryCount == 2 && decoded.expiration == -1)
        #expect(decoded.property("region") == .string("EU"))
        if case .double(let ratio) = decoded.property("ratio") {
            #expect(ratio.bitPattern == Double.nan.bitPattern)
        } else {
            Issue.record("ratio lost")
        }

        for length in 0..<bytes.count {
            let error = await expectError(.storage) { try MessageCodec.decodeMessage(Array(bytes.prefix(length))) }
            #expect(error?.message.contains("truncated") == true || error?.message.contains("corrupt") == true)
        }
        await expectError(.storage) { try MessageCodec.decodeMessage(bytes + [0]) }
        var newer = bytes
        newer[0] = 99
        let versionError = await expectError(.storage) { try MessageCodec.decodeMessage(newer) }
        #expect(versionError?.message.contains("version") == true)
    }

    @Test
    func theCodecRejectsCorruptContent() async throws {
        // Invalid UTF-8 in a text body: version, flags 0, persistent, 5 zero varints, 0 properties,
        // text body of 2 bytes 0xC3 0x28.
        let invalidText: [UInt8] = [1, 0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0xC3, 0x28]
        let error = await expectError(.storage) { try MessageCodec.decodeMessage(invalidText) }
        #expect(error?.message.contains("UTF-8") == true)
        #expect(try MessageCodec.decodeMessage([1, 0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0xC3, 0xA9]).text == "é")

        // An unknown body kind, an unknown delivery mode, a huge property count.
        await expectError(.storage) { try MessageCodec.decodeMessage([1, 0, 2, 0, 0, 0, 0, 0, 0, 9]) }
        await expectError(.storage) { try MessageCodec.decodeMessage([1, 0, 7, 0, 0, 0, 0, 0, 0, 0]) }
        await expectError(.storage) {
            try MessageCodec.decodeMessage([1, 0, 2, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0])
        }

        let record = SubscriptionRecord(
            key: SubscriptionKey(clientID: nil, name: "s"), topic: "t", selector: "x = 1", noLocal: true, isShared: true)
        let encoded = MessageCodec.encode(record)
        #expect(try MessageCodec.decodeSubscription(encoded) == record)
        for length in 0..<encoded.count {
            await expectError(.storage) { try MessageCodec.decodeSubscription(Array(encoded.prefix(length))) }
        }
        let key = StoreQueueKey.subscription(SubscriptionKey(clientID: "", name: "a:b"))
        #expect(try MessageCodec.decodeQueueKey(MessageCodec.encode(key)) == key)
        #expect(MessageCodec.encode(key) != MessageCodec.encode(.subscription(SubscriptionKey(clientID: nil, name: "a:b"))))
    }
}
}

extension LMDBStore.Durability: CustomTestStringConvertible {
    public var testDescription: String { description }
}

// MARK: - Helpers

/// A fresh directory path under the temporary directory, removed when the value goes away.
private final class TemporaryDirectory {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-lmdb-\(UUID().uuidString)")
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// "message <sequence>" with the headers a producer sets.
private func storedMessage(_ sequence: UInt64) -> Message {
    var message = Message(body: .text("message \(sequence)"))
    message.messageID = MessageID(origin: "lmdb-tests", sequence: sequence)
    message.timestamp = 1_750_000_000_000 + Int64(sequence)
    message.destination = .queue(Queue("orders"))
    return message
}
