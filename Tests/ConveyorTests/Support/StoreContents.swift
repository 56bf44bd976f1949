import Conveyor

/// Everything a store holds, read the way a test wants it: the recovery summary plus every
/// reference of every queue and subscription, read through ``MessageStore/messages(in:after:limit:)``
/// in small pages (so paging is exercised too).
struct StoreContents {
    var subscriptions: [SubscriptionRecord]
    var queues: [StoreQueueKey: StoredQueueSummary]
    var highestSequence: UInt64
    /// The references of each queue, in ascending sequence order.
    var messages: [StoreQueueKey: [RecoveredMessage]]
}

extension MessageStore {
    /// Opens the store and reads all it holds, checking that each summary count matches what the
    /// pages return.
    func openAndReadAll(pageSize: Int = 7) throws -> StoreContents {
        let recovery = try open()
        var messages: [StoreQueueKey: [RecoveredMessage]] = [:]
        for (key, summary) in recovery.queues {
            let all = try readAll(of: key, pageSize: pageSize)
            guard all.count == summary.count else {
                throw ConveyorError(.storage, "\(key): the summary says \(summary.count) references, the pages hold \(all.count)")
            }
            messages[key] = all
        }
        return StoreContents(
            subscriptions: recovery.subscriptions, queues: recovery.queues,
            highestSequence: recovery.highestSequence, messages: messages)
    }

    /// Every reference of one queue, page by page.
    func readAll(of key: StoreQueueKey, pageSize: Int = 7) throws -> [RecoveredMessage] {
        var all: [RecoveredMessage] = []
        var after: UInt64 = 0
        while true {
            let page = try messages(in: key, after: after, limit: pageSize)
            guard page.allSatisfy({ $0.sequence > after }),
                  zip(page, page.dropFirst()).allSatisfy({ $0.sequence < $1.sequence })
            else { throw ConveyorError(.storage, "\(key): a page is not in ascending order after \(after)") }
            all.append(contentsOf: page)
            guard page.count == pageSize, let last = page.last else { return all }
            after = last.sequence
        }
    }
}
