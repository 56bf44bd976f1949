// The store conformance suite: what every `MessageStore` engine must do. Each test runs on every
// `StoreKind`, uses only the storage protocol, and checks what survives closing the store and
// opening it again on the same location (a new object on the same directory for disk engines).
//
// `@testable` is needed only to build messages with the header fields a producer sets on send
// (`messageID`, `timestamp`, `destination`, `priority`, ...), which are `internal(set)`.
@testable import Conveyor
import Foundation
import Testing

extension HeavyTests {
@Suite("Store conformance", .timeLimit(.minutes(1)))
struct StoreConformanceTests {
    // MARK: Opening

    @Test(arguments: StoreKind.withCommitLog)
    func newStoreOpensEmpty(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        #expect(harness.firstRecovery.subscriptions.isEmpty)
        #expect(harness.firstRecovery.queues.isEmpty)
        #expect(harness.firstRecovery.highestSequence == 0)

        // Closing and reopening an untouched store, and committing an empty batch, changes nothing.
        try harness.commit()
        let recovery = try harness.reopen()
        #expect(recovery.subscriptions.isEmpty)
        #expect(recovery.nonEmptyKeys.isEmpty)
        #expect(recovery.highestSequence == 0)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func openingAnOpenStoreThrowsStorage(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let store = try location.makeStore()
        _ = try store.open()

        // A second broker on the same store (same instance or same location) is refused.
        let second = try location.makeStore()
        await expectError(.storage) { try second.open() }

        // The first opener is unaffected and keeps working.
        try store.commit(StoreBatch([add(1, to: [orders])]))
        store.close()

        // Once closed, the store opens again and holds what the first opener wrote.
        let reopened = try location.makeStore()
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        #expect(recovery.sequences(in: orders) == [1])
    }

    @Test(arguments: StoreKind.withCommitLog)
    func commitOnClosedStoreThrowsStorageAndAppliesNothing(kind: StoreKind) async throws {
        let location = StoreKind.Location(kind: kind)
        let store = try location.makeStore()
        _ = try store.open()
        try store.commit(StoreBatch([add(1, to: [orders])]))
        store.close()

        await expectError(.storage) {
            try store.commit(StoreBatch([add(2, to: [orders]), .remove(sequence: 1, from: orders)]))
        }

        let reopened = try location.makeStore()
        let recovery = try reopened.openAndReadAll()
        defer { reopened.close() }
        #expect(recovery.sequences(in: orders) == [1])
        #expect(recovery.highestSequence == 1)
    }

    // MARK: Messages

    @Test(arguments: StoreKind.withCommitLog)
    func addedMessageIsRecoveredWithEveryHeader(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        var message = makeMessage(3, body: .text("order #3"), destination: .queue(Queue("orders")))
        message.correlationID = "corr-ü-3"
        message.type = "order.created"
        message.replyTo = .queue(Queue("replies"))
        message.priority = 9
        message.deliveryMode = .persistent
        message.expiration = 1_900_000_000_123
        message.deliveryTime = 1_800_000_000_456
        try message.setProperty("EU", forName: "region")
        try message.setProperty(Int32(42), forName: "quantity")
        try message.setProperty(true, forName: "express")
        try message.setProperty("group-7", forName: "JMSXGroupID")
        try harness.commit(.add(StoredMessage(sequence: 3, message: message, targets: [orders])))

        let recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == [orders])
        let recovered = try #require(recovery.reference(3, in: orders))
        #expect(recovered.sequence == 3)
        #expect(recovered.deliveryCount == 0)
        expectSameMessage(recovered.message, message)
        #expect(recovered.message.text == "order #3")
        #expect(recovered.message.priority == 9)
        #expect(recovered.message.expiration == 1_900_000_000_123)
        #expect(recovery.highestSequence == 3)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func absentOptionalHeadersStayAbsent(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        var message = Message(body: .empty)
        message.destination = .queue(Queue("orders"))
        message.priority = 0
        try harness.commit(.add(StoredMessage(sequence: 1, message: message, targets: [orders])))

        let recovery = try harness.reopen()
        let recovered = try #require(recovery.reference(1, in: orders)).message
        expectSameMessage(recovered, message)
        #expect(recovered.messageID == nil)
        #expect(recovered.correlationID == nil)
        #expect(recovered.type == nil)
        #expect(recovered.replyTo == nil)
        #expect(recovered.timestamp == 0)
        #expect(recovered.expiration == 0)
        #expect(recovered.deliveryTime == 0)
        #expect(recovered.priority == 0)
        #expect(recovered.properties.isEmpty)
        #expect(recovered.body == .empty)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func highestSequenceIsTheHighestEverStored(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        // Added out of order, in two batches.
        try harness.commit(add(7, to: [orders]), add(3, to: [orders]))
        try harness.commit(add(5, to: [invoices]))
        #expect(try harness.reopen().highestSequence == 7)

        // Removing or purging the highest message does not lower it: sequences are never reused.
        try harness.commit(.remove(sequence: 7, from: orders))
        #expect(try harness.reopen().highestSequence == 7)
        try harness.commit(.purge(orders), .purge(invoices))
        let recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys.isEmpty)
        #expect(recovery.highestSequence == 7)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func messagesCommittedOutOfSequenceOrderAreAllKeptInOrder(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        // Sequences are allocated at send and committed later, so commits can land out of order.
        try harness.commit((10...19).map { add($0, to: [orders]) })
        try harness.commit(add(5, to: [orders]))
        try harness.commit(add(20, to: [orders]), add(7, to: [orders, subscriptionA]))
        try harness.commit(add(3, to: [subscriptionA]))

        let recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders) == [5, 7] + Array(10...20))
        #expect(recovery.sequences(in: subscriptionA) == [3, 7])
        #expect(recovery.reference(7, in: subscriptionA)?.message.text == "message 7")
        #expect(recovery.reference(5, in: orders)?.message.text == "message 5")
        #expect(recovery.highestSequence == 20)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func fanOutMessageLivesUntilItsLastReferenceGoes(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        let message = makeMessage(10, body: .text("price update"), destination: .topic(Topic("prices")))
        let targets: [StoreQueueKey] = [subscriptionA, subscriptionB, subscriptionC]
        try harness.commit(.add(StoredMessage(sequence: 10, message: message, targets: targets)))

        var recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == Set(targets))
        for target in targets {
            let recovered = try #require(recovery.reference(10, in: target), "missing under \(target)")
            #expect(recovered.deliveryCount == 0)
            expectSameMessage(recovered.message, message)
        }

        try harness.commit(.remove(sequence: 10, from: subscriptionA))
        recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == [subscriptionB, subscriptionC])
        expectSameMessage(try #require(recovery.reference(10, in: subscriptionB)).message, message)
        expectSameMessage(try #require(recovery.reference(10, in: subscriptionC)).message, message)

        try harness.commit(.remove(sequence: 10, from: subscriptionB))
        recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == [subscriptionC])
        expectSameMessage(try #require(recovery.reference(10, in: subscriptionC)).message, message)

        try harness.commit(.remove(sequence: 10, from: subscriptionC))
        recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys.isEmpty)
        #expect(recovery.allSequences.isEmpty)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func removingAMissingReferenceIsHarmless(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(add(1, to: [subscriptionA, subscriptionB]), add(2, to: [orders]))

        try harness.commit(
            .remove(sequence: 99, from: orders),            // no such message
            .remove(sequence: 2, from: invoices),           // message exists, not in this queue
            .remove(sequence: 1, from: orders),             // fan-out message, not in this queue
            .remove(sequence: 1, from: subscriptionC))      // nor in this subscription
        // Removing the same reference twice must not release the message's other reference.
        try harness.commit(.remove(sequence: 1, from: subscriptionA))
        try harness.commit(.remove(sequence: 1, from: subscriptionA))

        let recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == [subscriptionB, orders])
        #expect(recovery.sequences(in: subscriptionB) == [1])
        #expect(recovery.sequences(in: orders) == [2])
        #expect(recovery.reference(1, in: subscriptionB)?.message.text == "message 1")
        #expect(recovery.highestSequence == 2)
    }

    // MARK: Delivery counts

    @Test(arguments: StoreKind.withCommitLog)
    func deliveryCountPersistsPerReference(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(add(1, to: [orders]), add(2, to: [subscriptionA, subscriptionB]))
        try harness.commit(
            .setDeliveryCount(sequence: 1, in: orders, count: 1),
            .setDeliveryCount(sequence: 2, in: subscriptionA, count: 4))

        var recovery = try harness.reopen()
        #expect(recovery.reference(1, in: orders)?.deliveryCount == 1)
        #expect(recovery.reference(2, in: subscriptionA)?.deliveryCount == 4)
        #expect(recovery.reference(2, in: subscriptionB)?.deliveryCount == 0)

        // A reopened store takes further changes, and a later count replaces the earlier one.
        try harness.commit(.setDeliveryCount(sequence: 1, in: orders, count: 2))
        try harness.commit(.setDeliveryCount(sequence: 2, in: subscriptionA, count: 0))
        recovery = try harness.reopen()
        #expect(recovery.reference(1, in: orders)?.deliveryCount == 2)
        #expect(recovery.reference(2, in: subscriptionA)?.deliveryCount == 0)
        #expect(recovery.reference(2, in: subscriptionB)?.deliveryCount == 0)
        #expect(recovery.reference(1, in: orders)?.message.text == "message 1")
    }

    @Test(arguments: StoreKind.withCommitLog)
    func recordedDeliveriesAreReadBackAndRecovered(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(add(1, to: [orders]), add(2, to: [orders]), add(3, to: [subscriptionA]))
        try harness.store.recordDeliveries(StoreBatch([
            .setDeliveryCount(sequence: 1, in: orders, count: 1),
            .setDeliveryCount(sequence: 3, in: subscriptionA, count: 2),
        ]))

        // Visible to reads at once, before any later commit.
        let page = try harness.store.messages(in: orders, after: 0, limit: 10)
        #expect(page.map(\.deliveryCount) == [1, 0])
        #expect(try harness.store.messages(in: subscriptionA, after: 0, limit: 10).first?.deliveryCount == 2)

        // Kept across a reopen, whether or not a commit followed them.
        try harness.commit(.remove(sequence: 2, from: orders))
        try harness.store.recordDeliveries(StoreBatch([.setDeliveryCount(sequence: 1, in: orders, count: 2)]))
        let recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders) == [1])
        #expect(recovery.reference(1, in: orders)?.deliveryCount == 2)
        #expect(recovery.reference(3, in: subscriptionA)?.deliveryCount == 2)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func settingTheDeliveryCountOfAMissingReferenceIsHarmless(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(add(1, to: [orders]))
        try harness.commit(
            .setDeliveryCount(sequence: 99, in: orders, count: 3),    // no such message
            .setDeliveryCount(sequence: 1, in: invoices, count: 3),   // not in this queue
            .setDeliveryCount(sequence: 1, in: subscriptionA, count: 3))

        // It must not create a reference, nor touch the real one.
        let recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == [orders])
        #expect(recovery.sequences(in: orders) == [1])
        #expect(recovery.reference(1, in: orders)?.deliveryCount == 0)
        #expect(recovery.highestSequence == 1)

        // Nor be resurrected by a count set after the reference was removed.
        try harness.commit(.remove(sequence: 1, from: orders))
        try harness.commit(.setDeliveryCount(sequence: 1, in: orders, count: 5))
        #expect(try harness.reopen().nonEmptyKeys.isEmpty)
    }

    // MARK: Subscriptions

    @Test(arguments: StoreKind.withCommitLog)
    func subscriptionsAreRecoveredWithEveryField(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        let records = [
            SubscriptionRecord(
                key: SubscriptionKey(clientID: "client-1", name: "eu-prices"), topic: "prices",
                selector: "region = 'EU' AND price > 10.5", noLocal: true, isShared: false),
            SubscriptionRecord(
                key: SubscriptionKey(clientID: nil, name: "shared-audit"), topic: "audit/événements",
                selector: nil, noLocal: false, isShared: true),
            SubscriptionRecord(
                key: SubscriptionKey(clientID: "client-2", name: "all"), topic: "prices",
                selector: "", noLocal: false, isShared: false),
        ]
        try harness.commit(records.map { .saveSubscription($0) })

        let recovery = try harness.reopen()
        #expect(recovery.subscriptions.count == records.count)
        #expect(Set(recovery.subscriptions) == Set(records))
        // Subscriptions without messages hold no references.
        #expect(recovery.nonEmptyKeys.isEmpty)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func savingASubscriptionAgainReplacesIt(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        let key = SubscriptionKey(clientID: "client-1", name: "prices")
        let other = SubscriptionRecord(
            key: SubscriptionKey(clientID: "client-2", name: "prices"), topic: "prices",
            selector: nil, noLocal: false, isShared: false)
        try harness.commit(
            .saveSubscription(SubscriptionRecord(key: key, topic: "prices", selector: "a = 1", noLocal: true, isShared: false)),
            .saveSubscription(other))
        let replacement = SubscriptionRecord(key: key, topic: "quotes", selector: nil, noLocal: false, isShared: true)
        try harness.commit(.saveSubscription(replacement))

        let recovery = try harness.reopen()
        #expect(recovery.subscriptions.count == 2)
        #expect(Set(recovery.subscriptions) == [replacement, other])
    }

    @Test(arguments: StoreKind.withCommitLog)
    func deletingASubscriptionRemovesItAndItsReferences(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        let keep = record(subscriptionB)
        try harness.commit(.saveSubscription(record(subscriptionA)), .saveSubscription(keep))
        try harness.commit(
            add(1, to: [subscriptionA]),                       // only the deleted subscription
            add(2, to: [subscriptionA, orders]),               // also a queue
            add(3, to: [subscriptionA, subscriptionB]),        // also the other subscription
            add(4, to: [subscriptionB]))
        try harness.commit(.setDeliveryCount(sequence: 2, in: orders, count: 2))

        try harness.commit(.deleteSubscription(key(subscriptionA)))

        var recovery = try harness.reopen()
        #expect(recovery.subscriptions == [keep])
        #expect(recovery.sequences(in: subscriptionA).isEmpty)
        #expect(recovery.sequences(in: orders) == [2])
        #expect(recovery.sequences(in: subscriptionB) == [3, 4])
        #expect(recovery.allSequences == [2, 3, 4])
        #expect(recovery.reference(2, in: orders)?.deliveryCount == 2)
        #expect(recovery.reference(2, in: orders)?.message.text == "message 2")
        #expect(recovery.reference(3, in: subscriptionB)?.message.text == "message 3")

        // A new subscription with the same key starts empty.
        try harness.commit(.saveSubscription(record(subscriptionA)))
        recovery = try harness.reopen()
        #expect(Set(recovery.subscriptions) == [record(subscriptionA), keep])
        #expect(recovery.sequences(in: subscriptionA).isEmpty)

        // Deleting a subscription that does not exist is harmless.
        try harness.commit(.deleteSubscription(key(subscriptionC)))
        recovery = try harness.reopen()
        #expect(Set(recovery.subscriptions) == [record(subscriptionA), keep])
        #expect(recovery.allSequences == [2, 3, 4])
    }

    // MARK: Purge

    @Test(arguments: StoreKind.withCommitLog)
    func purgeRemovesEveryReferenceOfThatQueueOnly(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(.saveSubscription(record(subscriptionA)))
        try harness.commit(
            add(1, to: [orders]),
            add(2, to: [orders]),
            add(3, to: [orders, subscriptionA]),
            add(4, to: [invoices]),
            add(5, to: [subscriptionA]))

        try harness.commit(.purge(orders))
        var recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders).isEmpty)
        #expect(recovery.sequences(in: invoices) == [4])
        #expect(recovery.sequences(in: subscriptionA) == [3, 5])
        #expect(recovery.reference(3, in: subscriptionA)?.message.text == "message 3")
        #expect(recovery.allSequences == [3, 4, 5])

        // Purging a subscription's references keeps the subscription itself.
        try harness.commit(.purge(subscriptionA))
        recovery = try harness.reopen()
        #expect(recovery.subscriptions == [record(subscriptionA)])
        #expect(recovery.nonEmptyKeys == [invoices])

        // Purging an empty or unknown queue is harmless, and a purged queue takes new messages.
        try harness.commit(.purge(orders), .purge(StoreQueueKey.queue("never-used")))
        try harness.commit(add(6, to: [orders]))
        recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders) == [6])
        #expect(recovery.sequences(in: invoices) == [4])
        #expect(recovery.highestSequence == 6)
    }

    // MARK: Batches

    @Test(arguments: StoreKind.withCommitLog)
    func operationsInABatchApplyInOrder(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        try harness.commit(add(1, to: [invoices]))
        try harness.commit(
            add(2, to: [orders]), .remove(sequence: 2, from: orders),          // added then acked: gone
            add(3, to: [orders]), .setDeliveryCount(sequence: 3, in: orders, count: 2),
            .purge(invoices), add(4, to: [invoices]),                           // purge first, then add: kept
            .saveSubscription(record(subscriptionA)), add(5, to: [subscriptionA]),
            .deleteSubscription(key(subscriptionA)),                            // saved, filled, deleted: gone
            .deleteSubscription(key(subscriptionB)), .saveSubscription(record(subscriptionB)),
            add(6, to: [subscriptionB]))                                        // deleted first, then saved: kept

        let recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders) == [3])
        #expect(recovery.reference(3, in: orders)?.deliveryCount == 2)
        #expect(recovery.sequences(in: invoices) == [4])
        #expect(recovery.sequences(in: subscriptionA).isEmpty)
        #expect(recovery.sequences(in: subscriptionB) == [6])
        #expect(recovery.subscriptions == [record(subscriptionB)])
        #expect(recovery.allSequences == [3, 4, 6])
        #expect(recovery.highestSequence == 6)
    }

    // MARK: Volume

    @Test(arguments: StoreKind.withCommitLog)
    func manyMessagesRecoverCompletely(kind: StoreKind) throws {
        let harness = try StoreHarness(kind)
        let queues: [StoreQueueKey] = [.queue("q0"), .queue("q1"), .queue("q2")]
        let count: UInt64 = 5_000
        try harness.commit(.saveSubscription(record(subscriptionA)))

        var expected: [StoreQueueKey: Set<UInt64>] = [:]
        var expectedCounts: [UInt64: Int] = [:]
        var batch = StoreBatch()
        for sequence in 1...count {
            var targets = [queues[Int(sequence % 3)]]
            if sequence % 10 == 0 { targets.append(subscriptionA) }
            for target in targets { expected[target, default: []].insert(sequence) }
            batch.append(add(sequence, to: targets))
            if batch.operations.count == 250 {
                try harness.store.commit(batch)
                batch = StoreBatch()
            }
        }
        try harness.store.commit(batch)

        // Acknowledge every 7th from its queue, and record deliveries of every 11th, in one batch.
        batch = StoreBatch()
        for sequence in 1...count {
            let queue = queues[Int(sequence % 3)]
            if sequence % 7 == 0 {
                batch.append(.remove(sequence: sequence, from: queue))
                expected[queue]?.remove(sequence)
            } else if sequence % 11 == 0 {
                batch.append(.setDeliveryCount(sequence: sequence, in: queue, count: 3))
                expectedCounts[sequence] = 3
            }
        }
        try harness.store.commit(batch)

        let recovery = try harness.reopen()
        #expect(recovery.highestSequence == count)
        #expect(recovery.nonEmptyKeys == Set(expected.keys))
        for (key, sequences) in expected {
            let recovered = recovery.messages[key] ?? []
            #expect(recovered.count == sequences.count, "duplicates or losses under \(key)")
            #expect(Set(recovered.map(\.sequence)) == sequences, "wrong membership under \(key)")
            let wrong = recovered.filter { reference in
                let expectedCount = key == subscriptionA ? 0 : expectedCounts[reference.sequence] ?? 0
                return reference.message.text != "message \(reference.sequence)"
                    || reference.message.messageID?.sequence != reference.sequence
                    || reference.deliveryCount != expectedCount
            }
            #expect(wrong.isEmpty, "\(wrong.count) references under \(key) have a wrong body, ID or count")
        }
    }

    // MARK: Fidelity

    @Test(arguments: StoreKind.withCommitLog)
    func everyBodyKindSurvivesByteForByte(kind: StoreKind) throws {
        struct Order: Codable, Equatable { var id: Int; var item: String; var price: Double }
        let allValues: [MessageValue] = [
            .bool(true), .bool(false), .int8(.min), .int8(-1), .int16(.max), .int32(.min),
            .int64(.max), .int64(.min), .float(-0.0), .float(.leastNonzeroMagnitude), .float(.infinity),
            .double(.pi), .double(-.greatestFiniteMagnitude), .double(.leastNonzeroMagnitude),
            .string(""), .string("naïve 日本語 🚚"), .string("nul\u{0}inside"),
            .bytes(Data()), .bytes(Data([0, 0, 255, 0, 1])),
        ]
        let bodies: [MessageBody] = [
            .empty,
            .text(""),
            .text("plain ASCII"),
            .text("Grüße, Привет, こんにちは, 🚚📦, e\u{301} vs \u{E9}, tab\tnewline\ncr\r, nul\u{0}end"),
            .bytes(Data()),
            .bytes(Data([0])),
            .bytes(Data([0, 0, 0, 1, 0, 255, 254, 0, 0])),
            .bytes(Data((0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) })),
            .map([:]),
            .map(Dictionary(uniqueKeysWithValues: allValues.enumerated().map { ("k\($0.offset)", $0.element) })
                .merging(["clé €": .string("value"), "": .int32(0)]) { first, _ in first }),
            .stream([]),
            .stream(allValues),
            .stream([.bytes(Data([0])), .bytes(Data([0])), .string(""), .string("")]),
            .object(try JSONEncoder().encode(Order(id: 7, item: "Widget ß", price: 12.5))),
            .object(Data()),
        ]

        let harness = try StoreHarness(kind)
        try harness.commit(bodies.enumerated().map { index, body in
            .add(StoredMessage(sequence: UInt64(index + 1), message: makeMessage(UInt64(index + 1), body: body), targets: [orders]))
        })

        let recovery = try harness.reopen()
        #expect(recovery.sequences(in: orders) == (1...bodies.count).map(UInt64.init))
        for (index, body) in bodies.enumerated() {
            let recovered = try #require(recovery.reference(UInt64(index + 1), in: orders), "body #\(index) lost")
            #expect(recovered.message.body == body, "body #\(index) (\(body.kind)) changed")
            #expect(identical(recovered.message.body, body), "body #\(index) (\(body.kind)) not byte-identical")
        }
        let objectIndex = try #require(bodies.firstIndex { if case .object(let data) = $0 { !data.isEmpty } else { false } })
        let object = try #require(recovery.reference(UInt64(objectIndex + 1), in: orders)).message
        #expect(try object.decodeObject(Order.self) == Order(id: 7, item: "Widget ß", price: 12.5))
    }

    @Test(arguments: StoreKind.withCommitLog)
    func largeBodySurvives(kind: StoreKind) throws {
        var generator = SplitMix64(seed: 42)
        let bytes = Data((0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        let text = String(repeating: "ünïcödé 📦 ", count: 50_000)
        let harness = try StoreHarness(kind)
        try harness.commit(
            .add(StoredMessage(sequence: 1, message: makeMessage(1, body: .bytes(bytes)), targets: [orders, subscriptionA])),
            .add(StoredMessage(sequence: 2, message: makeMessage(2, body: .text(text)), targets: [orders])))

        let recovery = try harness.reopen()
        #expect(recovery.reference(1, in: orders)?.message.bytes == bytes)
        #expect(recovery.reference(1, in: subscriptionA)?.message.bytes == bytes)
        let recoveredText = try #require(recovery.reference(2, in: orders)?.message.text)
        #expect(recoveredText.utf8.elementsEqual(text.utf8))
    }

    @Test(arguments: StoreKind.withCommitLog)
    func everyPropertyValueKindSurvivesByteForByte(kind: StoreKind) throws {
        let properties: [String: MessageValue] = [
            "flagTrue": .bool(true), "flagFalse": .bool(false),
            "byteMin": .int8(.min), "byteMax": .int8(.max),
            "shortMin": .int16(.min), "shortMax": .int16(.max),
            "intMin": .int32(.min), "intMax": .int32(.max), "intZero": .int32(0),
            "longMin": .int64(.min), "longMax": .int64(.max),
            "floatNegZero": .float(-0.0), "floatTiny": .float(.leastNonzeroMagnitude),
            "floatInf": .float(-.infinity), "floatNaN": .float(.nan), "floatPi": .float(.pi),
            "doubleNegZero": .double(-0.0), "doubleSubnormal": .double(.leastNonzeroMagnitude),
            "doubleMax": .double(.greatestFiniteMagnitude), "doubleNaN": .double(.nan),
            "doubleInf": .double(.infinity), "doubleTenth": .double(0.1),
            "stringEmpty": .string(""), "stringUnicode": .string("Grüße 日本 🚚 e\u{301}"),
            "stringNul": .string("a\u{0}b"), "stringQuote": .string("it's \"quoted\" \\ / ="),
            "größe": .string("non-ASCII property name"), "_$under": .int32(1),
            "JMSXGroupID": .string("group-1"), "JMS_vendor": .int64(7),
        ]
        var message = makeMessage(1, body: .text("properties"))
        for (name, value) in properties { try message.setProperty(value: value, forName: name) }
        let harness = try StoreHarness(kind)
        try harness.commit(.add(StoredMessage(sequence: 1, message: message, targets: [orders])))

        let recovered = try #require(try harness.reopen().reference(1, in: orders)).message
        #expect(Set(recovered.propertyNames) == Set(properties.keys))
        for (name, value) in properties {
            let actual = try #require(recovered.property(name), "property \(name) lost")
            #expect(identical(actual, value), "property \(name): \(value) came back as \(actual)")
        }
        #expect(try recovered.property("intMin", as: Int32.self) == .min)
        #expect(try recovered.property("longMax", as: Int64.self) == .max)
    }

    @Test(arguments: StoreKind.withCommitLog)
    func headerDestinationsIdentifierAndTimestampSurvive(kind: StoreKind) throws {
        let replyTos: [Destination?] = [
            .queue(Queue("replies")), .topic(Topic("reply-topic")),
            .queue(Queue(temporaryName: "temp-queue-1")), .topic(Topic(temporaryName: "temp-topic-1")),
            .queue(Queue("réponses/eu 📬")), nil,
        ]
        let destinations: [Destination] = [.queue(Queue("orders")), .topic(Topic("prices"))]
        var messages: [UInt64: Message] = [:]
        for (index, replyTo) in replyTos.enumerated() {
            let sequence = UInt64(index + 1)
            var message = makeMessage(sequence, body: .text("request \(index)"), destination: destinations[index % 2])
            message.replyTo = replyTo
            message.messageID = MessageID(origin: "broker-\(index)-ü", sequence: 1_000_000_000_000 + sequence)
            message.timestamp = 1_700_000_000_000 + Int64(index)
            message.priority = index
            messages[sequence] = message
        }
        let harness = try StoreHarness(kind)
        try harness.commit(messages.map { .add(StoredMessage(sequence: $0.key, message: $0.value, targets: [orders])) })

        let recovery = try harness.reopen()
        for (sequence, message) in messages {
            let recovered = try #require(recovery.reference(sequence, in: orders), "message \(sequence) lost").message
            expectSameMessage(recovered, message)
            #expect(recovered.replyTo == message.replyTo)
            #expect(recovered.replyTo?.isTemporary == message.replyTo?.isTemporary)
            #expect(recovered.messageID == message.messageID)
            #expect(recovered.messageID?.description == message.messageID?.description)
            #expect(recovered.timestamp == message.timestamp)
        }
    }

    @Test(arguments: StoreKind.withCommitLog)
    func keysThatLookAlikeStayDistinct(kind: StoreKind) throws {
        // Keys whose text forms could collide in a naive encoding ("a:b" + "c" vs "a" + "b:c", a
        // queue named like a subscription, no client ID vs an empty one), plus names that are
        // awkward as file names or database keys.
        let keys: [StoreQueueKey] = [
            .queue("a:b:c"),
            .subscription(SubscriptionKey(clientID: "a:b", name: "c")),
            .subscription(SubscriptionKey(clientID: "a", name: "b:c")),
            .subscription(SubscriptionKey(clientID: nil, name: "a:b:c")),
            .subscription(SubscriptionKey(clientID: "", name: "a:b:c")),
            .subscription(SubscriptionKey(clientID: nil, name: "shared")),
            .subscription(SubscriptionKey(clientID: "", name: "shared")),
            .queue("shared"),
            .queue("Shared"),
            .queue("orders/eu/../x"),
            .queue("queue://orders"),
            .queue("zürich 📦 \\ * ? %00"),
            .queue(String(repeating: "n", count: 255)),
        ]
        let harness = try StoreHarness(kind)
        for (index, key) in keys.enumerated() {
            if case .subscription(let subscription) = key {
                try harness.commit(.saveSubscription(SubscriptionRecord(
                    key: subscription, topic: "t\(index)", selector: nil, noLocal: false, isShared: subscription.clientID == nil)))
            }
            try harness.commit(add(UInt64(index + 1), to: [key]))
        }

        var recovery = try harness.reopen()
        #expect(recovery.nonEmptyKeys == Set(keys))
        for (index, key) in keys.enumerated() {
            #expect(recovery.sequences(in: key) == [UInt64(index + 1)], "wrong references under \(key)")
        }
        #expect(recovery.subscriptions.count == 6)

        // Deleting or purging one of them leaves its look-alikes alone.
        try harness.commit(
            .deleteSubscription(SubscriptionKey(clientID: "a:b", name: "c")),
            .purge(.subscription(SubscriptionKey(clientID: nil, name: "shared"))),
            .purge(.queue("Shared")))
        recovery = try harness.reopen()
        let gone: Set<StoreQueueKey> = [keys[1], keys[5], keys[8]]
        #expect(recovery.nonEmptyKeys == Set(keys).subtracting(gone))
        #expect(recovery.subscriptions.count == 5)
        #expect(!recovery.subscriptions.contains { $0.key == SubscriptionKey(clientID: "a:b", name: "c") })
        #expect(recovery.subscriptions.contains { $0.key == SubscriptionKey(clientID: "a", name: "b:c") })
    }
}
}

// MARK: - Helpers

private let orders = StoreQueueKey.queue("orders")
private let invoices = StoreQueueKey.queue("invoices")
private let subscriptionA = StoreQueueKey.subscription(SubscriptionKey(clientID: "client-1", name: "sub-a"))
private let subscriptionB = StoreQueueKey.subscription(SubscriptionKey(clientID: "client-2", name: "sub-b"))
private let subscriptionC = StoreQueueKey.subscription(SubscriptionKey(clientID: nil, name: "sub-c"))

/// A store on a fresh location, opened; ``reopen()`` closes it and opens the location again, as a
/// restarted broker would. Closes the store when it goes away.
private final class StoreHarness {
    let location: StoreKind.Location
    private(set) var store: any MessageStore
    let firstRecovery: StoreRecovery
    private var isOpen = true

    init(_ kind: StoreKind) throws {
        location = StoreKind.Location(kind: kind)
        store = try location.makeStore()
        firstRecovery = try store.open()
    }

    /// Commits the operations as one batch.
    func commit(_ operations: StoreOperation...) throws { try store.commit(StoreBatch(operations)) }
    func commit(_ operations: [StoreOperation]) throws { try store.commit(StoreBatch(operations)) }

    /// Closes the store, opens a new one on the same location and returns what it recovered.
    func reopen() throws -> StoreContents {
        close()
        store = try location.makeStore()
        let recovery = try store.openAndReadAll()
        isOpen = true
        return recovery
    }

    func close() {
        if isOpen { store.close() }
        isOpen = false
    }

    deinit { close() }
}

/// A message with every header a producer sets on send, as the broker hands it to a store.
private func makeMessage(_ sequence: UInt64, body: MessageBody? = nil,
                         destination: Destination = .queue(Queue("orders"))) -> Message {
    var message = Message(body: body ?? .text("message \(sequence)"))
    message.messageID = MessageID(origin: "conformance", sequence: sequence)
    message.timestamp = 1_750_000_000_000 + Int64(sequence)
    message.destination = destination
    message.deliveryMode = .persistent
    message.priority = 4
    return message
}

/// Adds message `sequence` ("message <sequence>") with a reference from each target.
private func add(_ sequence: UInt64, to targets: [StoreQueueKey]) -> StoreOperation {
    .add(StoredMessage(sequence: sequence, message: makeMessage(sequence), targets: targets))
}

private func key(_ queueKey: StoreQueueKey) -> SubscriptionKey {
    guard case .subscription(let key) = queueKey else { preconditionFailure("\(queueKey) is not a subscription") }
    return key
}

/// A subscription record for a subscription key, on topic "prices".
private func record(_ queueKey: StoreQueueKey) -> SubscriptionRecord {
    SubscriptionRecord(key: key(queueKey), topic: "prices", selector: nil, noLocal: false, isShared: false)
}

extension StoreContents {
    /// The sequences referenced from `key`, sorted (duplicates kept, so they show up); empty when
    /// the key is absent. The store may return references in any order.
    fileprivate func sequences(in key: StoreQueueKey) -> [UInt64] {
        (messages[key] ?? []).map(\.sequence).sorted()
    }

    /// The reference to `sequence` held by `key`.
    fileprivate func reference(_ sequence: UInt64, in key: StoreQueueKey) -> RecoveredMessage? {
        messages[key]?.first { $0.sequence == sequence }
    }

    /// The keys holding at least one reference (a store may or may not list keys left empty).
    fileprivate var nonEmptyKeys: Set<StoreQueueKey> {
        Set(messages.filter { !$0.value.isEmpty }.keys)
    }

    /// Every sequence referenced from anywhere.
    fileprivate var allSequences: Set<UInt64> {
        Set(messages.values.flatMap { $0.map(\.sequence) })
    }
}

/// Expects every header, property and the body of `actual` to equal `expected`'s, bit for bit.
private func expectSameMessage(_ actual: Message, _ expected: Message,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.messageID == expected.messageID, sourceLocation: sourceLocation)
    #expect(actual.timestamp == expected.timestamp, sourceLocation: sourceLocation)
    #expect(actual.destination == expected.destination, sourceLocation: sourceLocation)
    #expect(actual.deliveryMode == expected.deliveryMode, sourceLocation: sourceLocation)
    #expect(actual.priority == expected.priority, sourceLocation: sourceLocation)
    #expect(actual.expiration == expected.expiration, sourceLocation: sourceLocation)
    #expect(actual.deliveryTime == expected.deliveryTime, sourceLocation: sourceLocation)
    #expect(actual.correlationID.map { Array($0.utf8) } == expected.correlationID.map { Array($0.utf8) },
            sourceLocation: sourceLocation)
    #expect(actual.type.map { Array($0.utf8) } == expected.type.map { Array($0.utf8) }, sourceLocation: sourceLocation)
    #expect(actual.replyTo == expected.replyTo, sourceLocation: sourceLocation)
    #expect(actual.body == expected.body, sourceLocation: sourceLocation)
    #expect(identical(actual.body, expected.body), "body not byte-identical", sourceLocation: sourceLocation)
    #expect(identical(actual.properties, expected.properties), "properties differ: \(actual.properties)",
            sourceLocation: sourceLocation)
}

/// Bit-for-bit equality: floats by bit pattern (so -0.0, NaN payloads count), strings by UTF-8 bytes
/// (so a store that normalises Unicode is caught, which `==` on `String` would not notice).
private func identical(_ a: MessageValue, _ b: MessageValue) -> Bool {
    switch (a, b) {
    case (.float(let x), .float(let y)): x.bitPattern == y.bitPattern
    case (.double(let x), .double(let y)): x.bitPattern == y.bitPattern
    case (.string(let x), .string(let y)): x.utf8.elementsEqual(y.utf8)
    default: a == b
    }
}

private func identical(_ a: [String: MessageValue], _ b: [String: MessageValue]) -> Bool {
    Set(a.keys.map { Array($0.utf8) }) == Set(b.keys.map { Array($0.utf8) })
        && a.allSatisfy { name, value in b[name].map { identical(value, $0) } ?? false }
}

private func identical(_ a: MessageBody, _ b: MessageBody) -> Bool {
    switch (a, b) {
    case (.text(let x), .text(let y)): x.utf8.elementsEqual(y.utf8)
    case (.map(let x), .map(let y)): identical(x, y)
    case (.stream(let x), .stream(let y)): x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    default: a == b
    }
}

