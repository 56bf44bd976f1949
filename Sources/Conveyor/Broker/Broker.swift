import Dispatch
import Logging
import Synchronization

/// An embedded message broker: queues, topics and subscriptions on top of one ``MessageStore``.
///
/// Create one per store and share it; applications talk to it through a ``ConnectionFactory``.
/// ```swift
/// let broker = try Broker(store: MemoryStore())
/// let connection = try ConnectionFactory(broker: broker).createConnection(clientID: "billing")
/// ```
/// Opening a broker recovers everything the store holds: persistent messages, with their delivery
/// counts, and durable subscriptions.
public final class Broker: Sendable {
    /// The storage engine.
    public let store: any MessageStore
    /// The settings the broker was opened with.
    public let configuration: BrokerConfiguration
    /// The prefix of every message identifier this broker assigns.
    let origin: String

    private let sequence: Atomic<UInt64>
    /// The store when other processes share it (see ``SharedMessageStore``).
    let shared: (any SharedMessageStore)?
    /// The subscription generation of the shared store the registry last caught up with.
    let knownSubscriptionGeneration = Atomic<UInt64>(0)
    /// Serialises catching up with subscription changes of other processes.
    let subscriptionSync = Mutex(())
    private let connectionIDs = Atomic<UInt64>(0)
    let registry = Mutex(Registry())
    private let blockingCommits: DispatchQueue?
    /// The store's ``MessageStore/recordingDeliveriesMayBlock``, read once.
    private let recordingDeliveriesMayBlock: Bool
    /// Page reads running in the background for the queues' memory windows (see ``QueuePager``).
    let backgroundPageReads = DispatchGroup()

    var logger: Logger { configuration.logger }

    struct Registry {
        var isClosed = false
        var queues: [String: MessageQueue] = [:]
        var topics: [String: TopicRouter] = [:]
        var temporaryQueues: [String: (queue: MessageQueue, owner: UInt64)] = [:]
        var temporaryTopics: [String: (router: TopicRouter, owner: UInt64)] = [:]
        var durableSubscriptions: [SubscriptionKey: Subscription] = [:]
        var sharedSubscriptions: [SubscriptionKey: Subscription] = [:]
        var nonDurableSubscriptions: [ObjectIdentifier: Subscription] = [:]
        var clientIDs: Set<String> = []
        var connections: [UInt64: Connection] = [:]
        var temporaryCounter: UInt64 = 0
    }

    /// Opens a broker on a store and recovers what the store holds.
    /// - Parameters:
    ///   - store: The storage engine; a ``MemoryStore`` by default.
    ///   - configuration: Settings; see ``BrokerConfiguration``.
    /// - Throws: ``ConveyorError/Code/storage`` if the store cannot be opened.
    public init(store: any MessageStore = MemoryStore(), configuration: BrokerConfiguration = .init()) throws(ConveyorError) {
        self.store = store
        self.configuration = configuration
        // At most 15 UTF-8 bytes, so Swift stores it inline: copying a message ID then touches no
        // shared reference count.
        self.origin = "cv" + String(UInt32.random(in: .min ... .max), radix: 16)
        // Concurrent, so that commits of different sessions overlap and a group-committing store can
        // share one fsync among them (see writeToStore); each session still awaits its own commits.
        self.blockingCommits = store.commitMayBlock
            ? DispatchQueue(label: "conveyor.store-commits", attributes: .concurrent) : nil
        self.recordingDeliveriesMayBlock = store.recordingDeliveriesMayBlock
        let sharedStore = store as? any SharedMessageStore
        self.shared = sharedStore?.isSharedAcrossProcesses == true ? sharedStore : nil
        let recovery = try store.open()
        self.sequence = Atomic(recovery.highestSequence)
        do {
            if let shared {
                knownSubscriptionGeneration.store(shared.subscriptionGeneration, ordering: .relaxed)
            }
            try recover(recovery)
        } catch {
            store.close()
            throw error
        }
        shared?.shareStatistics { [weak self] in self?.countersForSharing() ?? [:] }
        shared?.startWatching { [weak self] in self?.sharedStoreChanged() }
    }

    private func recover(_ recovery: StoreRecovery) throws(ConveyorError) {
        try registry.withLock { (registry) throws(ConveyorError) in
            for record in recovery.subscriptions {
                addStoredSubscription(record, in: &registry)
            }
            // With a shared store, consumers claim stored messages as they need them.
            for (key, summary) in recovery.queues where shared == nil {
                let target: MessageQueue
                switch key {
                case .queue(let name):
                    target = queue(named: name, in: &registry)
                case .subscription(let subscriptionKey):
                    guard let subscription = registry.durableSubscriptions[subscriptionKey] else {
                        logger.warning("the store holds messages for unknown subscription \(subscriptionKey); ignoring them")
                        continue
                    }
                    target = subscription.queue
                }
                if target.pager != nil {
                    // Read back page by page as consumers drain the queue.
                    target.restoreStoredBacklog(summary)
                } else {
                    try loadEverything(of: key, into: target)
                }
            }
        }
        logger.debug("broker opened", metadata: ["store": "\(store.name)", "messages": "\(recovery.queues.values.reduce(0) { $0 + $1.count })"])
    }

    /// Reads all of a queue's messages from a store that does not page.
    private func loadEverything(of key: StoreQueueKey, into target: MessageQueue) throws(ConveyorError) {
        let entries = try store.messages(in: key, after: 0, limit: .max).map { item in
            var message = item.message
            message.deliveryCount = item.deliveryCount
            message.redelivered = item.deliveryCount > 0
            return QueueEntry(sequence: item.sequence, message: message)
        }
        // A fresh queue is never deleted; limits are not applied to what the store already holds.
        _ = try? target.enqueue(entries)
        for entry in entries { if let id = entry.message.duplicateID { _ = target.admitDuplicateID(id) } }
    }

    /// Closes every connection (each waits for its message listeners in progress to return) and the
    /// store. Closing twice does nothing.
    public func close() {
        let connections = registry.withLock { registry -> [Connection]? in
            guard !registry.isClosed else { return nil }
            registry.isClosed = true
            return Array(registry.connections.values)
        }
        guard let connections else { return }
        for connection in connections { connection.close() }
        for queue in registry.withLock({ registry in
            Array(registry.queues.values) + registry.durableSubscriptions.values.map(\.queue)
        }) {
            queue.clearExpiryHandler()
        }
        // A page read still running in the background would otherwise find the store closed.
        backgroundPageReads.wait()
        store.close()
    }

    /// Counters for every queue and subscription, sorted by name.
    ///
    /// With a store shared by several processes (``SharedMessageStore``), the counters of every
    /// process that uses or used the store; otherwise this broker's since it opened (see
    /// ``DestinationStatistics``).
    public func statistics() -> [DestinationStatistics] {
        if shared != nil { return sharedStatistics() }
        let queues = registry.withLock { Self.listedQueues(in: $0) }
        return queues.map { $0.statistics() }.sorted { $0.name < $1.name }
    }

    /// The queues and subscriptions statistics list.
    static func listedQueues(in registry: Registry) -> [MessageQueue] {
        Array(registry.queues.values) + registry.temporaryQueues.values.map(\.queue)
            + registry.topics.values.flatMap { $0.current.map(\.queue) }
            + registry.temporaryTopics.values.flatMap { $0.router.current.map(\.queue) }
    }

    /// The durable subscriptions (shared or not), with their counters, sorted by topic then key.
    /// With a shared store, the counters are those of every process, as in ``statistics()``.
    public func durableSubscriptions() -> [DurableSubscriptionInfo] {
        syncSharedSubscriptions()
        let subscriptions = registry.withLock { Array($0.durableSubscriptions.values) }
        let counts = shared.map(readSharedCounts)
        return subscriptions.compactMap { subscription -> DurableSubscriptionInfo? in
            // Another process's non-durable subscriptions are not durable ones.
            guard let key = subscription.key, key.owningProcess == nil else { return nil }
            return DurableSubscriptionInfo(
                key: key, topic: subscription.topic, selector: subscription.selector?.expression,
                noLocal: subscription.noLocal, isShared: subscription.kind.isShared,
                statistics: counts.map { sharedStatistics(of: subscription.queue, in: $0) } ?? subscription.queue.statistics())
        }.sorted { ($0.topic.name, $0.key.description) < ($1.topic.name, $1.key.description) }
    }

    /// Counters for one queue, or `nil` if the queue has never been used (in this process).
    /// With a shared store, the counters are those of every process, as in ``statistics()``.
    /// - Parameter queue: The queue.
    public func statistics(for queue: Queue) -> DestinationStatistics? {
        let messageQueue = registry.withLock { registry in
            queue.isTemporary ? registry.temporaryQueues[queue.name]?.queue : registry.queues[queue.name]
        }
        guard let messageQueue else { return nil }
        guard let shared else { return messageQueue.statistics() }
        return sharedStatistics(of: messageQueue, in: readSharedCounts(shared))
    }

    /// Removes every waiting (not in-flight) message of a queue.
    /// - Parameter queue: The queue.
    /// - Returns: How many messages were removed.
    /// - Throws: ``ConveyorError/Code/storage`` if the store could not remove them.
    @discardableResult
    public func purge(_ queue: Queue) async throws(ConveyorError) -> Int {
        guard let messageQueue = registry.withLock({ $0.queues[queue.name] }) else { return 0 }
        var removed = messageQueue.removeAll()
        // Messages only in the store are read back a page at a time and removed with the rest.
        while messageQueue.readNextStoredPage() { removed += messageQueue.removeAll() }
        if let key = messageQueue.storeKey, removed.contains(where: messageQueue.isStored) {
            try await commit(StoreBatch(removed.filter(messageQueue.isStored).map { .remove(sequence: $0.sequence, from: key) }))
        }
        return removed.count
    }

    // MARK: Identity

    func nextSequence() -> UInt64 {
        if let shared { return shared.allocateSequence() }
        return sequence.add(1, ordering: .relaxed).newValue
    }

    func register(_ connection: Connection) throws(ConveyorError) {
        // Read before taking the registry lock: the connection's lock is never taken inside it.
        let clientID = connection.clientID
        if let clientID { try Self.validate(clientID: clientID) }
        try registry.withLock { (registry) throws(ConveyorError) in
            if registry.isClosed { throw .closed("broker") }
            if let clientID {
                guard registry.clientIDs.insert(clientID).inserted else {
                    throw ConveyorError(.invalidClientID, "the client ID '\(clientID)' is already in use by another open connection")
                }
            }
            registry.connections[connection.id] = connection
        }
    }

    /// Reserves a client ID for a connection that sets it after creation.
    /// - Throws: ``ConveyorError/Code/invalidClientID`` if an open connection uses it.
    func claimClientID(_ clientID: String) throws(ConveyorError) {
        try Self.validate(clientID: clientID)
        try registry.withLock { (registry) throws(ConveyorError) in
            if registry.isClosed { throw .closed("broker") }
            guard registry.clientIDs.insert(clientID).inserted else {
                throw ConveyorError(.invalidClientID, "the client ID '\(clientID)' is already in use by another open connection")
            }
        }
    }

    private static func validate(clientID: String) throws(ConveyorError) {
        if clientID.hasPrefix(SubscriptionKey.processPrefix) {
            throw ConveyorError(.invalidClientID, "the client ID '\(clientID)' starts with '\(SubscriptionKey.processPrefix)', which Conveyor reserves for its own subscriptions; choose another")
        }
    }

    func makeConnectionID() -> UInt64 { connectionIDs.add(1, ordering: .relaxed).newValue }

    /// Forgets a closed connection and deletes its temporary destinations.
    func unregister(_ connection: Connection) {
        let clientID = connection.clientID
        let dropped = registry.withLock { registry -> [MessageQueue] in
            registry.connections[connection.id] = nil
            if let clientID { registry.clientIDs.remove(clientID) }
            var dropped: [MessageQueue] = []
            for (name, item) in registry.temporaryQueues where item.owner == connection.id {
                registry.temporaryQueues[name] = nil
                dropped.append(item.queue)
            }
            for (name, item) in registry.temporaryTopics where item.owner == connection.id {
                registry.temporaryTopics[name] = nil
                item.router.markDeleted()
                dropped.append(contentsOf: item.router.current.map(\.queue))
            }
            return dropped
        }
        for queue in dropped { _ = queue.removeAll(markingDeleted: true) }
    }

    // MARK: Destinations

    /// The queue or topic a destination names, created on first use (temporary ones must exist).
    func target(for destination: Destination) throws(ConveyorError) -> SendTarget {
        try DestinationName.validate(destination.name)
        return try registry.withLock { (registry) throws(ConveyorError) -> SendTarget in
            if registry.isClosed { throw .closed("broker") }
            switch destination {
            case .queue(let queue) where queue.isTemporary:
                guard let item = registry.temporaryQueues[queue.name] else { throw Self.deletedTemporary(destination) }
                return .queue(item.queue)
            case .queue(let queue):
                return .queue(self.queue(named: queue.name, in: &registry))
            case .topic(let topic) where topic.isTemporary:
                guard let item = registry.temporaryTopics[topic.name] else { throw Self.deletedTemporary(destination) }
                return .topic(item.router)
            case .topic(let topic):
                return .topic(router(for: topic, in: &registry))
            }
        }
    }

    /// The queue a consumer or browser reads; temporary queues only for their own connection.
    func consumableQueue(_ queue: Queue, connectionID: UInt64) throws(ConveyorError) -> MessageQueue {
        guard case .queue(let messageQueue) = try target(for: .queue(queue)) else { preconditionFailure() }
        if queue.isTemporary {
            let owner = registry.withLock { $0.temporaryQueues[queue.name]?.owner }
            guard owner == connectionID else {
                throw .invalidDestination("\(queue) belongs to another connection; only the connection that created a temporary queue may consume from it")
            }
        }
        return messageQueue
    }

    func createTemporaryQueue(owner: UInt64) throws(ConveyorError) -> Queue {
        try registry.withLock { (registry) throws(ConveyorError) -> Queue in
            if registry.isClosed { throw .closed("broker") }
            registry.temporaryCounter += 1
            let queue = Queue(temporaryName: "temp-queue-\(origin)-\(owner)-\(registry.temporaryCounter)")
            let messageQueue = MessageQueue(
                displayName: queue.description, baseName: queue.name, storeKey: nil,
                policy: configuration.defaultPolicy, duplicateWindow: configuration.duplicateDetectionWindow)
            handleExpiry(of: messageQueue)
            registry.temporaryQueues[queue.name] = (messageQueue, owner)
            return queue
        }
    }

    func createTemporaryTopic(owner: UInt64) throws(ConveyorError) -> Topic {
        try registry.withLock { (registry) throws(ConveyorError) -> Topic in
            if registry.isClosed { throw .closed("broker") }
            registry.temporaryCounter += 1
            let topic = Topic(temporaryName: "temp-topic-\(origin)-\(owner)-\(registry.temporaryCounter)")
            registry.temporaryTopics[topic.name] = (TopicRouter(topic: topic, duplicateWindow: configuration.duplicateDetectionWindow), owner)
            return topic
        }
    }

    /// Deletes a temporary destination of `owner`.
    /// - Throws: ``ConveyorError/Code/illegalState`` while consumers still use it.
    func deleteTemporary(_ destination: Destination, owner: UInt64) throws(ConveyorError) {
        let queues = try registry.withLock { (registry) throws(ConveyorError) -> [MessageQueue] in
            switch destination {
            case .queue(let queue):
                guard let item = registry.temporaryQueues[queue.name], item.owner == owner else {
                    throw Self.deletedTemporary(destination)
                }
                if item.queue.statistics().consumers > 0 {
                    throw .illegalState("\(queue) still has consumers; close them before deleting it")
                }
                registry.temporaryQueues[queue.name] = nil
                return [item.queue]
            case .topic(let topic):
                guard let item = registry.temporaryTopics[topic.name], item.owner == owner else {
                    throw Self.deletedTemporary(destination)
                }
                if !item.router.current.isEmpty {
                    throw .illegalState("\(topic) still has subscribers; close them before deleting it")
                }
                registry.temporaryTopics[topic.name] = nil
                item.router.markDeleted()
                return []
            }
        }
        for queue in queues { _ = queue.removeAll(markingDeleted: true) }
    }

    /// Refuses a send through a resolved target whose temporary destination has since been deleted
    /// (a producer keeps its target; the queue or topic may go with its connection meanwhile).
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if it was deleted.
    func checkNotDeleted(_ target: SendTarget, _ destination: Destination) throws(ConveyorError) {
        let isDeleted = switch target {
        case .queue(let queue): queue.isDeleted
        case .topic(let router): router.isDeleted
        }
        if isDeleted { throw Self.deletedTemporary(destination) }
    }

    private static func deletedTemporary(_ destination: Destination) -> ConveyorError {
        .invalidDestination("the temporary destination \(destination) does not exist: it was deleted or its connection closed")
    }

    func queue(named name: String, in registry: inout Registry) -> MessageQueue {
        if let queue = registry.queues[name] { return queue }
        let queue = MessageQueue(
            displayName: "queue://\(name)", baseName: name, storeKey: .queue(name),
            policy: configuration.policy(for: name), duplicateWindow: configuration.duplicateDetectionWindow,
            pager: pager(for: .queue(name)))
        handleExpiry(of: queue)
        registry.queues[name] = queue
        return queue
    }

    /// How a durable queue or subscription reads its messages back, when the store pages.
    func pager(for key: StoreQueueKey) -> QueuePager? {
        guard store.pagesMessages || shared != nil else { return nil }
        return QueuePager(
            store: store, key: key, window: configuration.memoryWindow, logger: logger,
            backgroundReads: backgroundPageReads, shared: shared)
    }

    /// Routes what a queue's expiry sweep removes to ``dispose(_:from:)``.
    ///
    /// The handler holds the broker strongly (``close()`` clears it): a weak reference would give the
    /// broker and the queue side-table reference counts, which slow down every retain on the hot path.
    func handleExpiry(of queue: MessageQueue) {
        queue.setExpiryHandler { [unowned queue] expired in
            do {
                try await self.dispose(expired, from: queue)
            } catch {
                self.logger.error("could not remove expired messages from \(queue.displayName): \(error)")
            }
        }
    }

    func router(for topic: Topic, in registry: inout Registry) -> TopicRouter {
        if let router = registry.topics[topic.name] { return router }
        let router = TopicRouter(topic: topic, duplicateWindow: configuration.duplicateDetectionWindow)
        registry.topics[topic.name] = router
        return router
    }

    // MARK: Subscriptions

    /// Creates the non-durable subscription behind a topic consumer, or finds the shared one it
    /// joins, and counts the consumer on it.
    func subscribeNonDurable(_ request: SubscriptionRequest) throws(ConveyorError) -> Subscription {
        let router = try subscribableRouter(request)
        if request.kind == .nonDurable {
            let number = nextSequence()
            let storedAs = processOwnedKey(name: "\(request.connectionID)-\(number)")
            let subscription = Subscription(
                kind: .nonDurable, topic: request.topic, key: nil, selector: request.selector, noLocal: request.noLocal,
                ownerConnectionID: request.connectionID, ownerClientID: request.clientID,
                displayName: "\(request.topic)#\(request.connectionID)-\(number)", configuration: configuration,
                storedAs: storedAs, pager: storedAs.flatMap { pager(for: .subscription($0)) })
            handleExpiry(of: subscription.queue)
            try saveProcessOwned(subscription)
            try subscription.attachConsumer()
            registry.withLock { $0.nonDurableSubscriptions[ObjectIdentifier(subscription)] = subscription }
            router.add(subscription)
            return subscription
        }
        let key = request.key
        let subscription = try registry.withLock { (registry) throws(ConveyorError) -> Subscription in
            if let existing = registry.sharedSubscriptions[key] {
                guard existing.topic == request.topic, existing.selector == request.selector else {
                    throw .illegalState("the shared subscription '\(key)' exists with another topic or selector; use another name")
                }
                return existing
            }
            let storedAs = processOwnedKey(name: "shared-\(nextSequence())")
            let created = Subscription(
                kind: .sharedNonDurable, topic: request.topic, key: key, selector: request.selector, noLocal: false,
                ownerConnectionID: request.connectionID, ownerClientID: request.clientID,
                displayName: "\(request.topic)#\(key)", configuration: configuration,
                storedAs: storedAs, pager: storedAs.flatMap { pager(for: .subscription($0)) })
            handleExpiry(of: created.queue)
            try saveProcessOwned(created)
            registry.sharedSubscriptions[key] = created
            router.add(created)
            return created
        }
        try subscription.attachConsumer()
        return subscription
    }

    func subscribableRouter(_ request: SubscriptionRequest) throws(ConveyorError) -> TopicRouter {
        guard case .topic(let router) = try target(for: .topic(request.topic)) else { preconditionFailure() }
        if request.topic.isTemporary {
            let owner = registry.withLock { $0.temporaryTopics[request.topic.name]?.owner }
            if owner != request.connectionID {
                throw .invalidDestination("\(request.topic) belongs to another connection; only its creator may subscribe")
            }
        }
        return router
    }

    /// Creates or finds a durable subscription (shared or not) and counts the consumer on it.
    func subscribeDurable(_ request: SubscriptionRequest) async throws(ConveyorError) -> Subscription {
        if shared != nil { return try await subscribeDurableShared(request) }
        let router = try subscribableRouter(request)
        let key = request.key
        let shared = request.kind == .sharedDurable
        let outcome = try registry.withLock { (registry) throws(ConveyorError) -> (subscription: Subscription, isNew: Bool, replaced: Subscription?) in
            var replaced: Subscription?
            if let existing = registry.durableSubscriptions[key] {
                if try Self.canReopen(existing, for: request) { return (existing, false, nil) }
                // JMS §6.11.1: changing an inactive durable subscription replaces it; its messages go.
                registry.durableSubscriptions[key] = nil
                registry.topics[existing.topic.name]?.remove(existing)
                replaced = existing
            }
            let created = Subscription(
                kind: shared ? .sharedDurable : .durable, topic: request.topic, key: key, selector: request.selector,
                noLocal: request.noLocal, ownerConnectionID: request.connectionID, ownerClientID: request.clientID,
                displayName: "\(request.topic)#\(key)", configuration: configuration, pager: pager(for: .subscription(key)))
            handleExpiry(of: created.queue)
            registry.durableSubscriptions[key] = created
            router.add(created)
            return (created, true, replaced)
        }
        let subscription = outcome.subscription
        if outcome.isNew, let record = subscription.record {
            var batch = StoreBatch()
            if outcome.replaced != nil { batch.append(.deleteSubscription(key)) }
            batch.append(.saveSubscription(record))
            do {
                try await commit(batch)
            } catch {
                registry.withLock { registry in
                    if registry.durableSubscriptions[key] === subscription { registry.durableSubscriptions[key] = nil }
                }
                router.remove(subscription)
                throw error
            }
            outcome.replaced.map { _ = $0.queue.removeAll(markingDeleted: true) }
        }
        try subscription.attachConsumer()
        return subscription
    }

    /// Called when a consumer of `subscription` closes: non-durable subscriptions end with their
    /// last consumer.
    func consumerClosed(_ consumer: MessageConsumer, on subscription: Subscription) {
        let remaining = subscription.detachConsumer(consumer)
        guard remaining == 0, !subscription.kind.isDurable else { return }
        deleteProcessOwned(subscription)
        registry.withLock { registry in
            switch subscription.kind {
            case .sharedNonDurable:
                if let key = subscription.key, registry.sharedSubscriptions[key] === subscription {
                    registry.sharedSubscriptions[key] = nil
                }
            default:
                registry.nonDurableSubscriptions[ObjectIdentifier(subscription)] = nil
            }
            (registry.topics[subscription.topic.name] ?? registry.temporaryTopics[subscription.topic.name]?.router)?
                .remove(subscription)
        }
        _ = subscription.queue.removeAll(markingDeleted: true)
    }

    /// Deletes a durable subscription and its messages.
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if there is none by that name,
    ///   ``ConveyorError/Code/illegalState`` while a consumer is open on it or a message it delivered
    ///   is unacknowledged or part of an uncommitted transaction.
    func unsubscribe(_ key: SubscriptionKey) async throws(ConveyorError) {
        syncSharedSubscriptions()
        let subscription = try registry.withLock { (registry) throws(ConveyorError) -> Subscription in
            guard let subscription = registry.durableSubscriptions[key] else {
                throw .invalidDestination("there is no durable subscription named '\(key)'")
            }
            if subscription.activeConsumers > 0 {
                throw .illegalState("the durable subscription '\(key)' has an active consumer; close it before unsubscribing")
            }
            // JMS: nor while a message it delivered awaits acknowledgement or a pending transaction.
            if subscription.queue.statistics().inFlight > 0 {
                throw .illegalState("the durable subscription '\(key)' has delivered messages not yet acknowledged or committed; acknowledge, commit, recover or roll back first")
            }
            registry.durableSubscriptions[key] = nil
            registry.topics[subscription.topic.name]?.remove(subscription)
            return subscription
        }
        _ = subscription.queue.removeAll(markingDeleted: true)
        try await commit(StoreBatch([.deleteSubscription(key)]))
    }

    // MARK: Sending and committing

    /// The send hot path: a message that needs no store write, to destinations without backlog
    /// limits, is added synchronously.
    /// - Returns: `nil` when done; the entry back when the send needs ``send(_:to:from:)``.
    func sendWithoutWaiting(_ entry: consuming QueueEntry, to target: SendTarget, from publisher: Publisher) throws(ConveyorError) -> QueueEntry? {
        switch target {
        case .queue(let queue):
            guard !queue.isLimited, !queue.isStored(entry) else { return entry }
            if let id = entry.message.duplicateID, !queue.admitDuplicateID(id) { return nil }
            let now = entry.message.timestamp
            try queue.enqueue(entry, now: now)
            return nil
        case .topic(let router):
            // With a shared store, every subscription's messages go through the store.
            if shared != nil { return entry }
            let subscriptions = router.current
            // Subscriptions of one topic share its policy, so the first tells whether limits apply.
            guard !entry.isPersistent, subscriptions.first?.queue.isLimited != true else { return entry }
            if let id = entry.message.duplicateID, !router.admitDuplicateID(id) { return nil }
            let now = entry.message.timestamp
            for subscription in subscriptions
            where subscription.accepts(entry.message, fromConnection: publisher.connectionID, clientID: publisher.clientID) {
                // A subscription deleted meanwhile simply no longer receives.
                _ = try? subscription.queue.enqueue(copy entry, now: now)
            }
            return nil
        }
    }

    /// Sends one message outside a transaction: stores it if persistent, then makes it visible.
    /// (The slow path, for sends ``sendWithoutWaiting(_:to:from:)`` cannot finish: a store write,
    /// backlog limits, or a topic.)
    func send(_ entry: QueueEntry, to target: SendTarget, from publisher: Publisher) async throws(ConveyorError) {
        try await commit(sends: [PendingSend(entry: entry, target: target, publisher: publisher)], acknowledgements: [])
    }

    /// Appends to `queues` where a message goes: the queue, or each subscription of the topic that
    /// accepts it. Appends nothing when duplicate detection has seen the message's ID before at this
    /// destination; otherwise the ID is recorded, and `admitted` says where, so a failed send can
    /// forget it.
    private func route(_ entry: QueueEntry, to target: SendTarget, from publisher: Publisher,
                       admitted: inout [(SendTarget, String)], into queues: inout [MessageQueue]) {
        if let id = entry.message.duplicateID {
            let isNew = switch target {
            case .queue(let queue): queue.admitDuplicateID(id)
            case .topic(let router): router.admitDuplicateID(id)
            }
            guard isNew else {
                logger.debug("duplicate message dropped", metadata: ["duplicateID": "\(id)"])
                return
            }
            admitted.append((target, id))
        }
        switch target {
        case .queue(let queue):
            queues.append(queue)
        case .topic(let router):
            syncSharedSubscriptions()
            for subscription in router.current
            where subscription.accepts(entry.message, fromConnection: publisher.connectionID, clientID: publisher.clientID) {
                queues.append(subscription.queue)
            }
        }
    }

    /// The store keys of the queues among `queues` that store `entry`, or `nil` if none does.
    private static func storeKeys(of entry: QueueEntry, in queues: [MessageQueue]) -> [StoreQueueKey]? {
        // The common case, one queue: its prebuilt one-key list, no allocation.
        if queues.count == 1 { return queues[0].isStored(entry) ? queues[0].storeKeys : nil }
        var keys: [StoreQueueKey] = []
        keys.reserveCapacity(queues.count)
        for queue in queues where queue.isStored(entry) {
            if let key = queue.storeKey { keys.append(key) }
        }
        return keys.isEmpty ? nil : keys
    }

    /// The store keys of the last sends' queues: the sends of a transaction mostly go to the same
    /// queues (one queue, or the same subscriptions of a topic), and then share one list of keys
    /// instead of building one per message.
    private struct StoreKeysMemo {
        private var queues: [MessageQueue] = []
        private var isPersistent = false
        private var keys: [StoreQueueKey]?

        /// ``Broker/storeKeys(of:in:)``, reusing the previous list when the queues and the
        /// persistence are the same (whether a queue stores a message depends on nothing else).
        mutating func keys(of entry: QueueEntry, in routed: [MessageQueue]) -> [StoreQueueKey]? {
            if routed.count > 1, entry.isPersistent == isPersistent, routed.elementsEqual(queues, by: ===) {
                return keys
            }
            let keys = Broker.storeKeys(of: entry, in: routed)
            if routed.count > 1 {
                (queues, isPersistent, self.keys) = (routed, entry.isPersistent, keys)
            }
            return keys
        }
    }

    /// One queue a send of a transaction goes to.
    private struct Placement {
        let queue: MessageQueue
        /// The send's index in the commit's `sends`: the entry itself is copied only into the queue.
        let send: Int
        /// Whether room was reserved for it under the queue's backlog limits.
        var reserved = false
    }

    /// The placements of a transaction by queue, each queue's in the order of the sends, so that
    /// a queue takes all its messages under one lock rather than one lock per message (and a
    /// consumer receiving meanwhile does not contend for it at every message).
    private static func byQueue(_ placements: [Placement]) -> [(queue: MessageQueue, placements: [Int])] {
        var groups: [(queue: MessageQueue, placements: [Int])] = []
        var groupOfQueue: [ObjectIdentifier: Int] = [:]
        for index in placements.indices {
            let queue = placements[index].queue
            // Mostly one queue, or the same subscriptions over and over.
            if let last = groups.indices.last, groups[last].queue === queue {
                groups[last].placements.append(index)
            } else if let group = groupOfQueue[ObjectIdentifier(queue)] {
                groups[group].placements.append(index)
            } else {
                groupOfQueue[ObjectIdentifier(queue)] = groups.count
                groups.append((queue, [index]))
            }
        }
        return groups
    }

    /// Commits a transaction: every persistent send and acknowledgement in one store batch, then the
    /// sends become visible and the acknowledged messages leave their queues. Backlog limits are
    /// checked (and room reserved) for every send first; if anything fails, nothing is sent.
    func commit(sends: [PendingSend], acknowledgements: [Delivery]) async throws(ConveyorError) {
        var batch = StoreBatch()
        var placements: [Placement] = []
        // The placements by queue, once routed.
        var queues: [(queue: MessageQueue, placements: [Int])] = []
        var admitted: [(SendTarget, String)] = []
        placements.reserveCapacity(sends.count)
        batch.operations.reserveCapacity(sends.count + acknowledgements.count)
        // Entries are read in place through indices throughout: iterating copies each element.
        do {
            var routed: [MessageQueue] = []
            var memo = StoreKeysMemo()
            for index in sends.indices {
                routed.removeAll(keepingCapacity: true)
                route(sends[index].entry, to: sends[index].target, from: sends[index].publisher, admitted: &admitted, into: &routed)
                if let keys = memo.keys(of: sends[index].entry, in: routed) {
                    batch.append(.add(StoredMessage(sequence: sends[index].entry.sequence, message: sends[index].entry.message, targets: keys)))
                }
                for queue in routed { placements.append(Placement(queue: queue, send: index)) }
            }
            queues = Self.byQueue(placements)
            for (queue, indices) in queues {
                queue.beginTransit(indices.lazy.map { sends[placements[$0].send].entry }.filter(\.isPersistent).map(\.sequence))
            }
            for index in placements.indices where placements[index].queue.isLimited {
                let queue = placements[index].queue
                placements[index].reserved = try await queue.waitForCapacity(
                    count: 1, bytes: sends[placements[index].send].entry.message.body.byteCount
                ) { (expired) throws(ConveyorError) in try await self.dispose(expired, from: queue) }
            }
            for index in acknowledgements.indices where acknowledgements[index].queue.isStored(acknowledgements[index].entry) {
                if let key = acknowledgements[index].queue.storeKey {
                    batch.append(.remove(sequence: acknowledgements[index].entry.sequence, from: key))
                }
            }
            if !batch.isEmpty { try await commit(batch) }
        } catch {
            for (queue, indices) in queues {
                queue.cancelTransit(indices.lazy.map { sends[placements[$0].send].entry }.filter(\.isPersistent).map(\.sequence))
            }
            for placement in placements where placement.reserved {
                placement.queue.releaseReservation(count: 1, bytes: sends[placement.send].entry.message.body.byteCount)
            }
            for (target, id) in admitted {
                switch target {
                case .queue(let queue): queue.forgetDuplicateID(id)
                case .topic(let router): router.forgetDuplicateID(id)
                }
            }
            throw error
        }
        var dropped: [(MessageQueue, [QueueEntry])] = []
        // One clock reading for the whole transaction rather than one per message.
        let now = WallClock.nowMillis()
        var run: [QueueEntry] = []
        for (queue, indices) in queues {
            // Runs of sends with room reserved, or not (a queue's are mostly all one or the other).
            var start = 0
            while start < indices.count {
                let reserved = placements[indices[start]].reserved
                var end = start
                run.removeAll(keepingCapacity: true)
                while end < indices.count, placements[indices[end]].reserved == reserved {
                    run.append(sends[placements[indices[end]].send].entry)
                    end += 1
                }
                if let removed = try? queue.enqueue(run, now: now, reserved: reserved), !removed.isEmpty {
                    dropped.append((queue, removed))
                }
                start = end
            }
        }
        markAcknowledged(acknowledgements)
        if !dropped.isEmpty { try await removeFromStore(dropped) }
    }

    /// Counts acknowledged deliveries on their queues, once per run of deliveries from the same
    /// queue rather than once per message.
    private func markAcknowledged(_ deliveries: [Delivery]) {
        var start = deliveries.startIndex
        while start < deliveries.endIndex {
            let queue = deliveries[start].queue
            var bytes = deliveries[start].entry.message.body.byteCount
            var end = start + 1
            while end < deliveries.endIndex, deliveries[end].queue === queue {
                bytes += deliveries[end].entry.message.body.byteCount
                end += 1
            }
            queue.markAcknowledged(count: end - start, bytes: bytes)
            start = end
        }
    }

    /// Removes messages dropped by an overflow policy from the store.
    private func removeFromStore(_ dropped: [(MessageQueue, [QueueEntry])]) async throws(ConveyorError) {
        var batch = StoreBatch()
        for (queue, entries) in dropped {
            guard let key = queue.storeKey else { continue }
            for entry in entries where queue.isStored(entry) {
                batch.append(.remove(sequence: entry.sequence, from: key))
            }
        }
        if !batch.isEmpty { try await commit(batch) }
    }

    /// Disposes of messages a queue removed without delivering them: expired ones are dropped (or
    /// moved to the expiry queue), ones delivered too often move to the dead letter queue. Either way
    /// the move is one store transaction and the message keeps its body, properties and headers.
    func dispose(_ discarded: [DiscardedEntry], from source: MessageQueue) async throws(ConveyorError) {
        var batch = StoreBatch()
        var moves: [(MessageQueue, QueueEntry)] = []
        for item in discarded {
            let original = item.entry
            if source.isStored(original), let key = source.storeKey {
                batch.append(.remove(sequence: original.sequence, from: key))
            }
            let destination: Queue?
            let reason: String
            switch item.reason {
            case .expired:
                destination = source.policy.expiryQueue
                reason = "expired"
            case .tooManyDeliveries(let maximum):
                destination = source.policy.deadLetterQueue ?? Queue("DLQ.\(source.baseName)")
                reason = "delivered \(original.message.deliveryCount) times; the redelivery policy allows \(maximum) redeliveries"
            }
            guard let destination, case .queue(let target) = try self.target(for: .queue(destination)) else { continue }
            var message = original.message
            try? message.setProperty(original.message.destination?.description ?? source.displayName, forName: Self.originalDestinationProperty)
            try? message.setProperty(reason, forName: Self.deadLetterReasonProperty)
            try? message.setProperty(original.message.deliveryCount, forName: Self.deliveryCountProperty)
            message.destination = .queue(destination)
            message.expiration = 0
            message.deliveryCount = 0
            message.redelivered = false
            let moved = QueueEntry(sequence: nextSequence(), message: message)
            if target.isStored(moved), let key = target.storeKey {
                batch.append(.add(StoredMessage(sequence: moved.sequence, message: moved.message, targets: [key])))
            }
            moves.append((target, moved))
        }
        for (target, entry) in moves where entry.isPersistent { target.beginTransit(CollectionOfOne(entry.sequence)) }
        do {
            if !batch.isEmpty { try await commit(batch) }
        } catch {
            for (target, entry) in moves where entry.isPersistent { target.cancelTransit(CollectionOfOne(entry.sequence)) }
            throw error
        }
        source.markDiscarded(discarded)
        for (target, entry) in moves {
            if let dropped = try? target.enqueue(entry), !dropped.isEmpty { try await removeFromStore([(target, dropped)]) }
        }
        logger.debug("messages disposed of", metadata: ["queue": "\(source.displayName)", "count": "\(discarded.count)"])
    }

    /// The property naming where a dead-lettered or expired message was first sent.
    public static let originalDestinationProperty = "JMS_ConveyorOriginalDestination"
    /// The property saying why a message was dead-lettered or expired.
    public static let deadLetterReasonProperty = "JMS_ConveyorDeadLetterReason"
    /// The property holding a dead-lettered message's delivery count at the time it was moved.
    public static let deliveryCountProperty = "JMS_ConveyorDeliveryCount"

    /// Applies a store batch, off the cooperative pool when the store's commits may block (unless
    /// a group commit under way takes it: ``MessageStore/commitWithoutBlocking(_:completion:)``).
    func commit(_ batch: StoreBatch) async throws(ConveyorError) {
        try await writeToStore(handingOff: batch) { store throws(ConveyorError) in try store.commit(batch) }
    }

    /// Writes delivery counts before the messages are delivered (see
    /// ``MessageStore/recordDeliveries(_:)``): off Swift's cooperative pool like a commit if that may
    /// block (``MessageStore/recordingDeliveriesMayBlock``), else right here.
    func recordDeliveries(_ batch: StoreBatch) async throws(ConveyorError) {
        guard recordingDeliveriesMayBlock else {
            try store.recordDeliveries(batch)
            return
        }
        try await writeToStore { store throws(ConveyorError) in try store.recordDeliveries(batch) }
    }

    /// How many store writes that may block are running or waiting to run, in the process.
    private static let blockingWrites = Atomic(0)

    /// Runs a store write, off Swift's cooperative pool when the store's writes may block: on the
    /// blocking-commit queue if no other such write is running in the process, else on a serial
    /// queue of its own.
    ///
    /// The blocking-commit queue is concurrent and runs on the dispatch pool of about one thread
    /// per core (shared with other work), which adds a thread only once it notices its threads
    /// blocked: about a second later on Linux. A group commit keeps the threads of all its
    /// committers waiting for the group, so with as many committers as cores (W5 on LMDB on this
    /// 2-core machine: a publisher and two subscribers) a committer's write could wait for a thread
    /// while the others waited for it: stalls of milliseconds, 0.4 s of a 1.2 s run, and groups of
    /// two instead of three. A serial queue runs on the pool that starts a thread whenever one is
    /// needed; a lone write still takes the concurrent queue, whose threads the resumed task
    /// follows more cheaply (W3 and W6 measured 10–20 % slower with a serial queue for every
    /// write). Measured on LMDB, medians of 3–5 alternating runs: W5 237,000 → 280,000
    /// deliveries/s, W3 unchanged (229,000 / 227,000 msg/s).
    ///
    /// A commit's batch (`handingOff`) is first offered to the store without blocking: a
    /// transaction that completes a group commit (a consumer's acknowledgements joining the
    /// producer's sends, in W3) is then written by the group's leader and never changes threads.
    private func writeToStore(
        handingOff batch: StoreBatch? = nil, _ write: @escaping @Sendable (any MessageStore) throws(ConveyorError) -> Void
    ) async throws(ConveyorError) {
        guard let blockingCommits else {
            try write(store)
            return
        }
        let store = self.store
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, ConveyorError>, Never>) in
            if let batch, store.commitWithoutBlocking(batch, completion: { continuation.resume(returning: $0) }) { return }
            let running = Self.blockingWrites.wrappingAdd(1, ordering: .relaxed).oldValue
            let queue = running == 0 ? blockingCommits : DispatchQueue(label: "conveyor.store-write")
            queue.async {
                let result = Result { () throws(ConveyorError) in try write(store) }
                Self.blockingWrites.wrappingSubtract(1, ordering: .relaxed)
                continuation.resume(returning: result)
            }
        }
        try result.get()
    }
}

/// Where a producer's message goes: a queue, or every matching subscription of a topic.
enum SendTarget: Sendable {
    case queue(MessageQueue)
    case topic(TopicRouter)
}

/// Who sent a message, for `noLocal`.
struct Publisher: Sendable {
    let connectionID: UInt64
    let clientID: String?
}

/// A send held back by a transaction until commit.
struct PendingSend: Sendable {
    let entry: QueueEntry
    let target: SendTarget
    let publisher: Publisher
}

/// A message delivered to an application and not yet acknowledged.
struct Delivery: Sendable {
    let queue: MessageQueue
    var entry: QueueEntry
}

/// What a topic consumer asks for.
struct SubscriptionRequest: Sendable {
    var kind: Subscription.Kind
    var topic: Topic
    var name: String
    var selector: Selector?
    var noLocal: Bool
    var connectionID: UInt64
    var clientID: String?

    var key: SubscriptionKey { SubscriptionKey(clientID: clientID, name: name) }
}
