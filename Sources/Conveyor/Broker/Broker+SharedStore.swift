import Logging
import Synchronization

/// The broker's side of a store shared by several processes (see ``SharedMessageStore``): every
/// process keeps its registry of subscriptions in step with the store, and its consumers claim
/// their messages from the store.
extension Broker {
    /// Whether an existing durable subscription can be opened again for `request` as it is.
    /// - Returns: `true` if it matches the request; `false` if it differs and may be replaced
    ///   (JMS §6.11.1: changing an inactive durable subscription replaces it, and its messages go).
    /// - Throws: ``ConveyorError/Code/illegalState`` if it is of the other kind (shared or not), or
    ///   differs while a consumer uses it.
    static func canReopen(_ existing: Subscription, for request: SubscriptionRequest) throws(ConveyorError) -> Bool {
        let key = request.key
        let shared = request.kind == .sharedDurable
        if existing.kind.isShared != shared {
            throw .illegalState(
                "the durable subscription '\(key)' exists as \(existing.kind.isShared ? "shared" : "unshared"); it cannot be opened as \(shared ? "shared" : "unshared")")
        }
        if existing.topic == request.topic, existing.selector == request.selector, existing.noLocal == request.noLocal {
            return true
        }
        if existing.activeConsumers > 0 {
            throw .illegalState(
                "the durable subscription '\(key)' is active with another topic, selector or noLocal; close its consumers before changing it")
        }
        return false
    }

    /// The key a non-durable subscription of this process is stored under in a shared store, so that
    /// publishers in other processes can reach it; `nil` without a shared store.
    func processOwnedKey(name: String) -> SubscriptionKey? {
        shared.map { SubscriptionKey.processOwned(by: $0.processToken, name: name) }
    }

    /// Saves the record of a non-durable subscription in a shared store (blocking for the commit),
    /// so that publishers in every process route to it from now on.
    func saveProcessOwned(_ subscription: Subscription) throws(ConveyorError) {
        guard subscription.storedAs != nil, let record = subscription.record else { return }
        try store.commit(StoreBatch([.saveSubscription(record)]))
    }

    /// Deletes a non-durable subscription's record and messages from a shared store when its last
    /// consumer closes (blocking for the commit; a failure is logged, and the store deletes the
    /// subscription when this process closes it or dies).
    func deleteProcessOwned(_ subscription: Subscription) {
        guard let key = subscription.storedAs else { return }
        do {
            try store.commit(StoreBatch([.deleteSubscription(key)]))
        } catch {
            logger.error("cannot delete the subscription \(subscription.queue.displayName) from the shared store: \(error)")
        }
    }

    /// Adds a subscription found in the store: a durable one, or a non-durable one of another process.
    func addStoredSubscription(_ record: SubscriptionRecord, in registry: inout Registry) {
        let selector: Selector?
        do {
            selector = try Selector.parse(record.selector)
        } catch {
            logger.warning("stored subscription \(record.key) has an invalid selector; it matches every message", metadata: ["error": "\(error)"])
            selector = nil
        }
        let topic = Topic(record.topic)
        let subscription = Subscription(
            kind: record.isShared ? .sharedDurable : .durable, topic: topic, key: record.key,
            selector: selector, noLocal: record.noLocal, ownerConnectionID: 0, ownerClientID: record.key.clientID,
            displayName: "\(topic)#\(record.key)", configuration: configuration,
            pager: pager(for: .subscription(record.key)))
        handleExpiry(of: subscription.queue)
        registry.durableSubscriptions[record.key] = subscription
        router(for: topic, in: &registry).add(subscription)
    }

    /// Catches up with the subscriptions other processes created or deleted since the last time,
    /// if any did (one shared-memory read when none did).
    func syncSharedSubscriptions() {
        guard let shared, shared.subscriptionGeneration != knownSubscriptionGeneration.load(ordering: .acquiring) else { return }
        subscriptionSync.withLock { _ in
            // Read before the records: a change after this read makes the next check sync again.
            let generation = shared.subscriptionGeneration
            guard generation != knownSubscriptionGeneration.load(ordering: .acquiring) else { return }
            let records: [SubscriptionRecord]
            do {
                records = try shared.currentSubscriptions()
            } catch {
                logger.error("cannot read the subscriptions of the shared store: \(error)")
                return
            }
            let token = shared.processToken
            let removed = registry.withLock { registry -> [Subscription] in
                var wanted: [SubscriptionKey: SubscriptionRecord] = [:]
                // This process's own non-durable subscriptions are local objects already.
                for record in records where record.key.owningProcess != token { wanted[record.key] = record }
                var removed: [Subscription] = []
                for (key, existing) in registry.durableSubscriptions {
                    if let record = wanted[key], existing.record == record {
                        wanted[key] = nil
                        continue
                    }
                    registry.durableSubscriptions[key] = nil
                    registry.topics[existing.topic.name]?.remove(existing)
                    removed.append(existing)
                }
                for record in wanted.values { addStoredSubscription(record, in: &registry) }
                return removed
            }
            for subscription in removed { _ = subscription.queue.removeAll(markingDeleted: true) }
            knownSubscriptionGeneration.store(generation, ordering: .releasing)
        }
    }

    /// Creates or finds a durable subscription in a shared store. The store, not this process's
    /// registry, decides: the record is committed first, then the registry catches up with it.
    func subscribeDurableShared(_ request: SubscriptionRequest) async throws(ConveyorError) -> Subscription {
        _ = try subscribableRouter(request)
        let key = request.key
        syncSharedSubscriptions()
        let existing = registry.withLock { $0.durableSubscriptions[key] }
        var batch = StoreBatch()
        if let existing {
            if try Self.canReopen(existing, for: request) {
                try existing.attachConsumer()
                return existing
            }
            batch.append(.deleteSubscription(key))
        }
        batch.append(.saveSubscription(SubscriptionRecord(
            key: key, topic: request.topic.name, selector: request.selector?.expression, noLocal: request.noLocal,
            isShared: request.kind == .sharedDurable)))
        try await commit(batch)
        syncSharedSubscriptions()
        guard let subscription = registry.withLock({ $0.durableSubscriptions[key] }) else {
            throw ConveyorError(.storage, "the durable subscription '\(key)' was deleted by another process while it was being created; try again")
        }
        try subscription.attachConsumer()
        return subscription
    }

    /// Called by the shared store when another process changed it: catches up with subscription
    /// changes and lets waiting consumers claim what may have arrived.
    func sharedStoreChanged() {
        syncSharedSubscriptions()
        let queues = registry.withLock { registry -> [MessageQueue] in
            Array(registry.queues.values) + registry.durableSubscriptions.values.map(\.queue)
                + registry.nonDurableSubscriptions.values.map(\.queue) + registry.sharedSubscriptions.values.map(\.queue)
        }
        for queue in queues { queue.sharedStoreChanged() }
    }
}
