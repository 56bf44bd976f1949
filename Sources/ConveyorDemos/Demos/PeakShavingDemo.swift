import Conveyor

/// Peak shaving (the seeds' flash sale, 秒杀 / 削峰): a burst of buyers hits a bounded queue that
/// rejects what it cannot hold, and the order service drains it at its own pace, paced by a token
/// bucket that is itself a queue.
struct PeakShavingDemo: Demo {
    let name = "peak-shaving"
    let summary = "A flash sale: a bounded queue rejects the overflow; a token bucket on a queue paces the orders."

    static let buyers = 30
    static let stock = 10
    static let tokensPerTick = 3
    static let tick = Duration.milliseconds(100)

    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        try await TemporaryStore.with(name) { store in
            var configuration = BrokerConfiguration()
            var sale = DestinationPolicy()
            sale.limits = DestinationLimits(maximumMessages: Self.stock, overflow: .reject)
            configuration.policies["flash-sale"] = sale
            var bucket = DestinationPolicy()
            bucket.limits = DestinationLimits(maximumMessages: Self.tokensPerTick, overflow: .reject)
            configuration.policies["tokens"] = bucket
            configuration.prefetch = 1
            let broker = try store.openBroker(configuration)
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let sale_ = Destination.q("flash-sale")
            let tokens = Destination.q("tokens")

            narrator.explain("""
                \(Self.buyers) buyers click 'buy' within a millisecond, but only \(Self.stock) phones are on sale. \
                queue://flash-sale holds at most \(Self.stock) requests (DestinationLimits, overflow .reject): the \
                rest are refused at once with a resource-allocation error, instead of piling up and crushing the \
                order service.
                """)
            let accepted = Counter()
            let rejected = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for buyer in 1...Self.buyers {
                    group.addTask {
                        let producer = try connection.createSession().createProducer(for: sale_)
                        do {
                            _ = try await producer.send(.text("buyer-\(buyer)"))
                            accepted.increment()
                            narrator.event("buyer-\(buyer)", .send, "request queued")
                        } catch let error as ConveyorError where error.code == .resourceAllocation {
                            rejected.increment()
                            if rejected.value <= 3 {
                                narrator.event("buyer-\(buyer)", .reject, "refused: the queue is full (sold out, try later)")
                            } else if rejected.value == Self.buyers - Self.stock {
                                narrator.event("buyers", .reject, "… \(rejected.value - 3) more refused the same way")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            narrator.result("\(accepted.value) requests queued, \(rejected.value) refused at the door")

            narrator.section("the order service drains the queue at its own pace")
            narrator.explain("""
                The order service may process \(Self.tokensPerTick) orders per \(Self.tick.wholeMilliseconds) ms. A \
                refiller puts \(Self.tokensPerTick) tokens into queue://tokens every tick (the bucket holds at most \
                \(Self.tokensPerTick): extra tokens are refused, so bursts cannot be saved up). The order service takes \
                a token before each order: when the bucket is empty, its receive simply waits.
                """)
            let refillerSession = try connection.createSession()
            let refillerProducer = try refillerSession.createProducer(for: tokens)
            let processed = Recorder()
            let refiller = Task {
                var tick = 0
                while !Task.isCancelled {
                    tick += 1
                    var added = 0
                    for _ in 0..<Self.tokensPerTick {
                        do {
                            _ = try await refillerProducer.send(.text("token"), options: .nonPersistent)
                            added += 1
                        } catch let error as ConveyorError where error.code == .resourceAllocation {
                            break
                        }
                    }
                    narrator.event("refiller", .store, "tick \(tick): +\(added) token\(added == 1 ? "" : "s")")
                    try await Task.sleep(for: Self.tick)
                }
            }
            let session = try connection.createSession()
            let tokenConsumer = try session.createConsumer(for: tokens)
            let orderConsumer = try session.createConsumer(for: sale_)
            try connection.start()
            let started = ContinuousClock.now
            var tokensUsed = 0
            while processed.total < accepted.value {
                guard try await tokenConsumer.receive(timeout: .seconds(5)) != nil else { throw DemoError("no token came") }
                tokensUsed += 1
                guard let order = try await orderConsumer.receive(timeout: .seconds(1)) else { break }
                processed.record("order-service", order.shown)
                narrator.event("order-service", .receive, "took a token, processed the order of \(order.shown)")
            }
            refiller.cancel()
            _ = try? await refiller.value
            let elapsed = ContinuousClock.now - started

            var report = DemoReport()
            report.received = processed.received
            report["buyers"] = Self.buyers
            report["accepted"] = accepted.value
            report["rejected"] = rejected.value
            report["processed"] = processed.total
            report["tokensUsed"] = tokensUsed
            report["left"] = broker.held("queue://flash-sale")
            narrator.result("""
                \(report["processed"]) orders processed in \(elapsed.wholeMilliseconds) ms at ≤ \(Self.tokensPerTick) per tick, \
                \(report["rejected"]) buyers refused, the order service never saw more than it could handle
                """)
            return report
        }
    }
}
