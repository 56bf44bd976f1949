// The worker's "deliveries" mode, for the LMDB delivery log tests
// (Tests/ConveyorTests/LMDBDeliveryLogTests.swift):
//
//     ConveyorCrashWorker deliveries <directory>
//
// Opens an LMDBStore (sync durability, one process) on <directory> and, through the store API
// alone (no broker, so that every step is deterministic):
//
//     commits messages 1…10 to the queue "deliveries"
//     records delivery count 1 for messages 1 and 2
//     commits the removal of message 2 (this commit folds the counts logged so far)
//     records count 2 for message 1, 1 for message 3, and 5 for message 2 (removed: it must not
//     come back)
//
// then prints `RECORDED` and waits until stdin closes (exit 0, without closing the store) or it
// is killed. Errors print `ERROR <message>` and exit with status 2.

import Conveyor
import ConveyorLMDB

/// The deliveries mode: see the comment at the top of this file. `arguments` follow "deliveries".
func deliveries(_ arguments: [String]) -> Never {
    guard arguments.count == 1 else { fail("usage: ConveyorCrashWorker deliveries <directory>") }
    let queue = StoreQueueKey.queue("deliveries")
    let store = LMDBStore(directory: arguments[0], options: LMDBStore.Options(durability: .sync))
    do {
        _ = try store.open()
        try store.commit(StoreBatch((1...10).map { sequence in
            .add(StoredMessage(sequence: UInt64(sequence), message: Message(body: .text("message \(sequence)")), targets: [queue]))
        }))
        try store.recordDeliveries(StoreBatch([
            .setDeliveryCount(sequence: 1, in: queue, count: 1),
            .setDeliveryCount(sequence: 2, in: queue, count: 1),
        ]))
        try store.commit(StoreBatch([.remove(sequence: 2, from: queue)]))
        try store.recordDeliveries(StoreBatch([
            .setDeliveryCount(sequence: 1, in: queue, count: 2),
            .setDeliveryCount(sequence: 3, in: queue, count: 1),
            .setDeliveryCount(sequence: 2, in: queue, count: 5),
        ]))
    } catch {
        fail(error.message)
    }
    emit("RECORDED")
    waitForEndOfInput()
}
