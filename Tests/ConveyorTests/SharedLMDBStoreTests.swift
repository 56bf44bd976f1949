// The LMDB store's process locks and its multi-process mode (`sharing: .processes`), tested in one
// process: LMDB forbids opening one environment twice in a process, so the "other processes" here
// are lock files the test holds itself and member rows it inserts (`addMemberForTesting`).
// Tests with real child processes live elsewhere.
@testable import Conveyor
@testable import ConveyorLMDB
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HeavyTests {
@Suite("Shared LMDB store", .timeLimit(.minutes(2)))
struct SharedLMDBStoreTests {
    static let shared = LMDBStore.Options(sharing: .processes)

    // MARK: Process locks

    @Test
    func aSingleProcessStoreHoldsItsLockFileExclusivelyWithItsProcessID() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        let lock = try LockFile(directory.path + "/conveyor.lock")
        #expect(lock.tryLock(LOCK_SH) == EWOULDBLOCK)
        #expect(lock.contents.hasPrefix("\(getpid())"))
        store.close()
        #expect(lock.tryLock(LOCK_EX) == 0)
    }

    @Test
    func aSingleProcessHolderIsNamedToEveryOtherOpener() async throws {
        let directory = SharedTemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        // Another process in single-process mode: holds the lock exclusively, its pid in the file.
        let lock = try LockFile(directory.path + "/conveyor.lock")
        lock.write("424242\n")
        #expect(lock.tryLock(LOCK_EX) == 0)

        let single = await expectError(.storage) { try LMDBStore(directory: directory.url).open() }
        #expect(single?.message.contains("is open in process 424242 (single-process mode)") == true, "\(single?.message ?? "")")
        #expect(single?.message.contains(directory.url.lastPathComponent) == true)
        let shared = await expectError(.storage) { try LMDBStore(directory: directory.url, options: Self.shared).open() }
        #expect(shared?.message.contains("is open in process 424242 (single-process mode)") == true, "\(shared?.message ?? "")")
        #expect(shared?.message.contains("sharing: .processes") == true)

        // Refused openers leave nothing locked: once the holder goes, both modes open.
        lock.unlock()
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        store.close()
    }

    @Test
    func aSingleProcessOpenerIsRefusedWhileAGroupSharesTheStore() async throws {
        let directory = SharedTemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        // Another process of a shared group: holds the lock shared.
        let member = try LockFile(directory.path + "/conveyor.lock")
        #expect(member.tryLock(LOCK_SH) == 0)

        let error = await expectError(.storage) { try LMDBStore(directory: directory.url).open() }
        #expect(error?.message.contains("is shared by other processes (sharing: .processes)") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("open this one with sharing: .processes too") == true)

        // A shared opener joins, and holds the lock shared too (no pid written).
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        let probe = try LockFile(directory.path + "/conveyor.lock")
        #expect(probe.tryLock(LOCK_EX) == EWOULDBLOCK)
        #expect(probe.tryLock(LOCK_SH) == 0)
        #expect(probe.contents.isEmpty)
    }

    // MARK: Sequences and subscriptions

    @Test
    func sequencesIncreaseAndStayAboveTheHighestStoredAfterAGroupRestart() throws {
        let directory = SharedTemporaryDirectory()
        do {
            let store = LMDBStore(directory: directory.url, options: Self.shared)
            _ = try store.open()
            let first = store.allocateSequence()
            let second = store.allocateSequence()
            #expect(second > first)
            try store.commit(StoreBatch([.add(StoredMessage(sequence: 1_000, message: message(1_000), targets: [.queue("q")]))]))
            store.close()
        }
        // A new group resets the shared counters, and must start above what is stored.
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        let recovery = try store.open()
        defer { store.close() }
        #expect(recovery.highestSequence == 1_000)
        let next = store.allocateSequence()
        #expect(next > 1_000)
        #expect(store.allocateSequence() > next)
    }

    @Test(arguments: [LMDBStore.Sharing.singleProcess, .processes])
    func theSubscriptionGenerationChangesWithSubscriptionsOnly(sharing: LMDBStore.Sharing) throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: LMDBStore.Options(sharing: sharing))
        _ = try store.open()
        defer { store.close() }
        let key = SubscriptionKey(clientID: "c", name: "s")
        let initial = store.subscriptionGeneration
        try store.commit(StoreBatch([.saveSubscription(record(key))]))
        let saved = store.subscriptionGeneration
        #expect(saved != initial)
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: message(1), targets: [.subscription(key)]))]))
        #expect(store.subscriptionGeneration == saved)
        try store.commit(StoreBatch([.deleteSubscription(key)]))
        #expect(store.subscriptionGeneration != saved)
        #expect(try store.currentSubscriptions().isEmpty)
    }

    // MARK: Claims

    @Test
    func claimsTakeUnclaimedReferencesInOrderWithinTheLimitAndTheFilter() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        try store.commit(StoreBatch((1...6).map { .add(StoredMessage(sequence: $0, message: message($0), targets: [.queue("q")])) }))
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 3, in: .queue("q"), count: 2)]))

        let first = try store.claim(in: .queue("q"), limit: 2) { _ in true }
        #expect(first.map(\.sequence) == [1, 2])
        #expect(first.map(\.message.text) == ["message 1", "message 2"])
        // Rejected messages stay unclaimed and do not count against the limit.
        let filtered = try store.claim(in: .queue("q"), limit: 10) { $0.text != "message 4" }
        #expect(filtered.map(\.sequence) == [3, 5, 6])
        #expect(filtered.first?.deliveryCount == 2)
        #expect(try store.claim(in: .queue("q"), limit: 10) { $0.text != "message 4" }.isEmpty)
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [4])
        #expect(try store.claim(in: .queue("q"), limit: 0) { _ in true }.isEmpty)
        #expect(try store.claim(in: .queue("never used"), limit: 10) { _ in true }.isEmpty)

        // Released references are claimable again; unknown sequences are ignored.
        try store.release([2, 5, 99], in: .queue("q"))
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [2, 5])
    }

    @Test
    func theClaimFilterSeesTheRecordedDeliveryCount() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        try store.commit(StoreBatch((1...3).map { .add(StoredMessage(sequence: $0, message: message($0), targets: [.queue("q")])) }))
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 2, in: .queue("q"), count: 1)]))
        // What a consumer with the selector `JMSXDeliveryCount > 1` asks: redeliveries only.
        let redeliveries = try Selector("JMSXDeliveryCount > 1")
        let claimed = try store.claim(in: .queue("q"), limit: 10) { redeliveries.matchesDelivery(of: $0) }
        #expect(claimed.map(\.sequence) == [2])
    }

    @Test
    func acknowledgingOrDroppingAQueueDeletesItsClaims() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        let key = SubscriptionKey(clientID: "c", name: "durable")
        try store.commit(StoreBatch([
            .saveSubscription(record(key)),
            .add(StoredMessage(sequence: 1, message: message(1), targets: [.queue("q")])),
            .add(StoredMessage(sequence: 2, message: message(2), targets: [.queue("q")])),
            .add(StoredMessage(sequence: 3, message: message(3), targets: [.subscription(key), .queue("p")])),
        ]))
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [1, 2])
        #expect(try store.claim(in: .subscription(key), limit: 10) { _ in true }.map(\.sequence) == [3])
        #expect(try store.claim(in: .queue("p"), limit: 10) { _ in true }.map(\.sequence) == [3])
        #expect(try store.claimHolderForTesting(in: .queue("q"), sequence: 1) != nil)

        try store.commit(StoreBatch([.remove(sequence: 1, from: .queue("q"))]))
        #expect(try store.claimHolderForTesting(in: .queue("q"), sequence: 1) == nil)
        #expect(try store.claimHolderForTesting(in: .queue("q"), sequence: 2) != nil)
        try store.release([1, 2], in: .queue("q"))
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [2])

        try store.commit(StoreBatch([.deleteSubscription(key), .purge(.queue("p"))]))
        #expect(try store.claimHolderForTesting(in: .subscription(key), sequence: 3) == nil)
        #expect(try store.claimHolderForTesting(in: .queue("p"), sequence: 3) == nil)
    }

    @Test
    func claimsNeedTheSharedMode() async throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url)
        _ = try store.open()
        defer { store.close() }
        #expect(!store.isSharedAcrossProcesses)
        let error = await expectError(.storage) { try store.claim(in: .queue("q"), limit: 1) { _ in true } }
        #expect(error?.message.contains("sharing: .processes") == true, "\(error?.message ?? "")")
    }

    // MARK: Leaving and restarting

    @Test
    func closingReleasesClaimsAndDeletesOwnSubscriptionsAndFiles() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        let own = SubscriptionKey.processOwned(by: store.processToken, name: "temporary")
        let durable = SubscriptionKey(clientID: "c", name: "durable")
        try store.commit(StoreBatch([
            .saveSubscription(record(own)),
            .saveSubscription(record(durable)),
            .add(StoredMessage(sequence: 1, message: message(1), targets: [.queue("q"), .subscription(own), .subscription(durable)])),
        ]))
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [1])
        let member = try #require(UInt64(store.processToken.prefix { $0 != "-" }))
        let members = directory.path + "/shared/members"
        #expect(FileManager.default.fileExists(atPath: "\(members)/\(member).wake"))
        #expect(FileManager.default.fileExists(atPath: "\(members)/\(member).lock"))
        store.close()

        // Read what close left, without opening a store (whose open would clean up as well).
        #expect(!FileManager.default.fileExists(atPath: "\(members)/\(member).wake"))
        #expect(!FileManager.default.fileExists(atPath: "\(members)/\(member).lock"))
        let claims = try ClaimsEnvironment.open(path: directory.path + "/shared/claims")
        // In a read-only transaction, releasing finds nothing to delete, or fails (and so the test).
        let (listed, held) = try claims.read { (table) throws(LMDBError) in
            (try table.members(), try table.releaseAll(member: member))
        }
        claims.close()
        #expect(listed.isEmpty)
        #expect(held == 0)
        let path = try #require(realpath(directory.path, nil).map { pointer in defer { free(pointer) }; return String(cString: pointer) })
        let environment = try LMDBEnvironment.open(path: path, options: .init())
        let snapshot = try LMDBStore.readSnapshot(environment)
        environment.close()
        #expect(snapshot.recovery.subscriptions.map(\.key) == [durable])
        #expect(snapshot.recovery.queues[.subscription(own)] == nil)
        #expect(snapshot.recovery.queues[.subscription(durable)]?.count == 1)
    }

    @Test
    func theFirstOpenerOfAGroupResetsClaimsAndProcessOwnedSubscriptions() throws {
        let directory = SharedTemporaryDirectory()
        let durable = SubscriptionKey(clientID: "c", name: "durable")
        let orphan: SubscriptionKey
        do {
            let store = LMDBStore(directory: directory.url, options: Self.shared)
            _ = try store.open()
            try store.commit(StoreBatch((1...3).map { .add(StoredMessage(sequence: $0, message: message($0), targets: [.queue("q")])) }))
            // A process that dies holding claims and a subscription; nobody reaps it here.
            let dead = try store.addMemberForTesting(pid: 999_999, claims: [(.queue("q"), 1), (.queue("q"), 3)])
            orphan = SubscriptionKey.processOwned(by: dead.token, name: "temporary")
            try store.commit(StoreBatch([
                .saveSubscription(record(orphan)),
                .saveSubscription(record(durable)),
                .add(StoredMessage(sequence: 4, message: message(4), targets: [.subscription(orphan), .subscription(durable)])),
            ]))
            #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [2])
            store.close()
        }
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        let recovery = try store.open()
        defer { store.close() }
        #expect(recovery.subscriptions.map(\.key) == [durable])
        #expect(recovery.queues[.subscription(orphan)] == nil)
        #expect(try store.currentSubscriptions().map(\.key) == [durable])
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [1, 2, 3])
        #expect(try store.messages(in: .subscription(durable), after: 0, limit: 10).map(\.sequence) == [4])
    }

    // MARK: Reaping and waking

    @Test
    func theReaperReleasesWhatADeadMemberHeldOnceAndOnlyWhenItIsDead() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        try store.commit(StoreBatch((1...3).map { .add(StoredMessage(sequence: $0, message: message($0), targets: [.queue("q")])) }))
        let other = try store.addMemberForTesting(pid: 999_999, claims: [(.queue("q"), 1), (.queue("q"), 2)])
        let owned = SubscriptionKey.processOwned(by: other.token, name: "temporary")
        try store.commit(StoreBatch([
            .saveSubscription(record(owned)),
            .add(StoredMessage(sequence: 4, message: message(4), targets: [.subscription(owned)])),
        ]))
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [3])

        // Alive while its lock file is locked.
        let lockPath = directory.path + "/shared/members/\(other.id).lock"
        let alive = try LockFile(lockPath)
        #expect(alive.tryLock(LOCK_EX) == 0)
        #expect(store.reapDeadMembers() == 0)
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.isEmpty)

        // Dead once the lock is gone: its claims, subscription and files go, once.
        alive.unlock()
        let generation = store.subscriptionGeneration
        #expect(store.reapDeadMembers() == 1)
        #expect(store.reapDeadMembers() == 0)
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [1, 2])
        #expect(try store.currentSubscriptions().isEmpty)
        #expect(try store.messages(in: .subscription(owned), after: 0, limit: 10).isEmpty)
        #expect(store.subscriptionGeneration != generation)
        #expect(!FileManager.default.fileExists(atPath: lockPath))
    }

    @Test
    func aMemberWithoutALockFileIsDead() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        try store.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: message(1), targets: [.queue("q")]))]))
        _ = try store.addMemberForTesting(pid: 999_999, claims: [(.queue("q"), 1)])
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.isEmpty)
        #expect(store.reapDeadMembers() == 1)
        #expect(try store.claim(in: .queue("q"), limit: 10) { _ in true }.map(\.sequence) == [1])
    }

    @Test
    func commitsThatAddMessagesAndReleasesWakeTheOtherMembers() throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        defer { store.close() }
        // A live member: its lock held and its FIFO open, as another process would have them.
        let other = try store.addMemberForTesting(pid: 999_999, claims: [])
        let members = directory.path + "/shared/members"
        let lock = try LockFile("\(members)/\(other.id).lock")
        #expect(lock.tryLock(LOCK_EX) == 0)
        let fifo = try Fifo("\(members)/\(other.id).wake")

        try store.commit(StoreBatch([.add(StoredMessage(sequence: 1, message: message(1), targets: [.queue("q")]))]))
        #expect(fifo.drain() > 0)
        _ = try store.claim(in: .queue("q"), limit: 1) { _ in true }
        #expect(fifo.drain() == 0)
        try store.release([1], in: .queue("q"))
        #expect(fifo.drain() > 0)
        try store.commit(StoreBatch([.setDeliveryCount(sequence: 1, in: .queue("q"), count: 1)]))
        try store.commit(StoreBatch([.remove(sequence: 1, from: .queue("q"))]))
        #expect(fifo.drain() == 0)
        try store.commit(StoreBatch([.saveSubscription(record(SubscriptionKey(clientID: "c", name: "s")))]))
        #expect(fifo.drain() > 0)
        // A live member is not reaped.
        #expect(store.reapDeadMembers() == 0)
    }

    @Test
    func theWatcherCallsOnChangeWhenWokenAndStopsAtClose() async throws {
        let directory = SharedTemporaryDirectory()
        let store = LMDBStore(directory: directory.url, options: Self.shared)
        _ = try store.open()
        let changes = Atomic<Int>(0)
        store.startWatching { changes.add(1, ordering: .relaxed) }
        let member = try #require(UInt64(store.processToken.prefix { $0 != "-" }))
        // Another process's wake: a byte in this member's FIFO.
        let fifo = try Fifo(directory.path + "/shared/members/\(member).wake", create: false)
        fifo.signal()
        #expect(await waitUntil { changes.load(ordering: .relaxed) >= 1 })

        // A dead member reaped by the watcher also counts as a change.
        let before = changes.load(ordering: .relaxed)
        _ = try store.addMemberForTesting(pid: 999_999, claims: [])
        #expect(await waitUntil { changes.load(ordering: .relaxed) > before })

        store.close()
        let after = changes.load(ordering: .relaxed)
        fifo.signal()    // the FIFO is unlinked, but this descriptor still reaches the pipe
        // The watcher has stopped (close waited for it), so nothing can call onChange any more.
        #expect(changes.load(ordering: .relaxed) == after)
    }
}
}

// MARK: Helpers

/// A temporary store directory, deleted when the object goes.
final class SharedTemporaryDirectory {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-shared-\(UUID().uuidString)")
    var path: String { url.path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A lock file opened by the test, standing for another process's lock.
private final class LockFile {
    let descriptor: Int32

    init(_ path: String) throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ConveyorError(.storage, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
    }

    /// `flock(operation | LOCK_NB)`: 0, or the `errno` value.
    func tryLock(_ operation: Int32) -> Int32 {
        flock(descriptor, operation | LOCK_NB) == 0 ? 0 : errno
    }

    func unlock() { _ = flock(descriptor, LOCK_UN) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = ftruncate(descriptor, 0)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    var contents: String {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        return String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
    }

    deinit { close(descriptor) }
}

/// A member's wake FIFO, opened by the test.
private final class Fifo {
    let descriptor: Int32

    init(_ path: String, create: Bool = true) throws {
        if create, mkfifo(path, 0o600) != 0 {
            throw ConveyorError(.storage, "cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        descriptor = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw ConveyorError(.storage, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
    }

    /// Reads every pending byte; returns how many there were.
    func drain() -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return total }
            total += count
        }
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(descriptor, &byte, 1)
    }

    deinit { close(descriptor) }
}

private func message(_ sequence: UInt64) -> Message {
    var message = Message(body: .text("message \(sequence)"))
    message.messageID = MessageID(origin: "shared-lmdb-tests", sequence: sequence)
    message.timestamp = 1_750_000_000_000 + Int64(sequence)
    message.destination = .queue(Queue("q"))
    return message
}

private func record(_ key: SubscriptionKey) -> SubscriptionRecord {
    SubscriptionRecord(key: key, topic: "events", selector: nil, noLocal: false, isShared: false)
}
