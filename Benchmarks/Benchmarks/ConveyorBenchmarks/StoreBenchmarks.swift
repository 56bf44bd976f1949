import Benchmark
import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization

// Micro-benchmarks of one store transaction per store.
//
// `MessageCodec` (the binary message format) is `package`-visible in the Conveyor package, and this
// is a separate package, so it cannot be called here. Encoding is measured through its public
// caller instead — every LMDB commit of an `add` encodes the message — and decoding through
// reopening an LMDB store, which decodes every stored message.

/// The message the store benchmarks commit: a 128-byte bytes message, as in the standard workloads,
/// with the headers a broker sets when it is sent.
func sentMessage() async throws -> Message {
    let broker = try Broker(store: MemoryStore())
    defer { broker.close() }
    let session = try ConnectionFactory(broker: broker).createConnection().createSession(.autoAcknowledge)
    let producer = try session.createProducer(for: .queue(Queue("conveyor.bench.store")))
    var generator = SystemRandomNumberGenerator()
    let body = Data((0..<128).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    return try await producer.send(.bytes(body), options: .nonPersistent)
}

/// A one-message transaction: add the message to a queue and remove it again (a persistent send and
/// its acknowledgement in one batch), so the store stays empty and every commit does the same work.
func addAndRemoveBatch(_ message: Message, sequence: UInt64 = 1) -> StoreBatch {
    let queue = StoreQueueKey.queue("conveyor.bench.store")
    return StoreBatch([
        .add(StoredMessage(sequence: sequence, message: message, targets: [queue])),
        .remove(sequence: sequence, from: queue),
    ])
}

/// An LMDB store in a fresh temporary directory, removed when the fixture is closed.
final class LMDBFixture: Sendable {
    let directory: URL
    let store: LMDBStore

    init(durability: LMDBStore.Durability) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-bench-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = LMDBStore(directory: directory, options: .init(durability: durability))
        _ = try store.open()
    }

    func close() {
        store.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A file store (OS-buffered) in a fresh temporary directory, removed when the fixture is closed;
/// hands out W3-shaped batches with rising sequence numbers.
final class FileFixture: Sendable {
    let directory: URL
    let store: FileStore
    private let sequence = Mutex<UInt64>(0)
    private static let queue = StoreQueueKey.queue("conveyor.bench.store")

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-bench-file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = FileStore(directory: directory, options: .init(durability: .osBuffered))
        _ = try store.open()
    }

    /// 100 adds of new messages and the removal of the 100 added by the batch before.
    func nextW3Batch(_ message: Message) -> StoreBatch {
        let first = sequence.withLock { value in
            defer { value += 100 }
            return value + 1
        }
        var operations = (first..<first + 100).map {
            StoreOperation.add(StoredMessage(sequence: $0, message: message, targets: [Self.queue]))
        }
        if first > 100 {
            operations += (first - 100..<first).map { .remove(sequence: $0, from: Self.queue) }
        }
        return StoreBatch(operations)
    }

    func close() {
        store.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Holds what a benchmark's setup creates, for its closure and its teardown (package-benchmark
/// passes the setup's result to the closure only).
final class FixtureBox<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    func set(_ newValue: Value?) { value.withLock { $0 = newValue } }
    func get() -> Value {
        guard let current = value.withLock({ $0 }) else { fatalError("the benchmark's setup did not run") }
        return current
    }
}

/// Registers the store-transaction benchmarks.
func storeBenchmarks() {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

    // MemoryStore: one commit is a lock and two dictionary updates, so 1,000 commits per iteration.
    let memory = FixtureBox<(store: MemoryStore, batch: StoreBatch)>()
    Benchmark(
        "Store commit add+remove (memory)",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 10_000),
        closure: { benchmark in
            let (store, batch) = memory.get()
            for _ in benchmark.scaledIterations {
                try store.commit(batch)
            }
        },
        setup: {
            let store = MemoryStore()
            _ = try store.open()
            memory.set((store, addAndRemoveBatch(try await sentMessage())))
        },
        teardown: {
            memory.get().store.close()
            memory.set(nil)
        })

    // LMDB: one commit per iteration. The message is encoded by every commit.
    for durability in [LMDBStore.Durability.osBuffered, .sync] {
        let box = FixtureBox<(fixture: LMDBFixture, batch: StoreBatch)>()
        Benchmark(
            "Store commit add+remove (lmdb, \(durability))",
            configuration: .init(metrics: metrics, maxDuration: .seconds(2), maxIterations: 100_000),
            closure: { benchmark in
                let (fixture, batch) = box.get()
                let store = fixture.store
                for _ in benchmark.scaledIterations {
                    try store.commit(batch)
                }
            },
            setup: { box.set((try LMDBFixture(durability: durability), addAndRemoveBatch(try await sentMessage()))) },
            teardown: {
                box.get().fixture.close()
                box.set(nil)
            })
    }

    // The file store with a W3-sized commit: 100 adds and the 100 removes of the previous commit's
    // messages, as a producer's and a consumer's batches share one group. OS-buffered, so the figure
    // is the CPU of encoding, appending and indexing, which a sync-mode group adds to its sync.
    let file = FixtureBox<(fixture: FileFixture, message: Message)>()
    Benchmark(
        "Store commit 100 adds + 100 removes (file, osBuffered)",
        configuration: .init(metrics: metrics, maxDuration: .seconds(2), maxIterations: 100_000),
        closure: { benchmark in
            let (fixture, message) = file.get()
            for _ in benchmark.scaledIterations {
                try fixture.store.commit(fixture.nextW3Batch(message))
            }
        },
        setup: { file.set((try FileFixture(), try await sentMessage())) },
        teardown: {
            file.get().fixture.close()
            file.set(nil)
        })

    // Reopening an LMDB store with 1,000 queued messages and reading them back as one page.
    let recovery = FixtureBox<LMDBFixture>()
    let backlog = 1_000
    Benchmark(
        "Store reopen and page of \(backlog) messages (lmdb)",
        configuration: .init(metrics: metrics, maxDuration: .seconds(2), maxIterations: 10_000),
        closure: { benchmark in
            let store = recovery.get().store
            for _ in benchmark.scaledIterations {
                store.close()
                let queue = StoreQueueKey.queue("conveyor.bench.store")
                let summary = try store.open().queues[queue]
                let page = try store.messages(in: queue, after: 0, limit: backlog)
                precondition(summary?.count == backlog && page.count == backlog, "expected \(backlog) stored messages, found \(page.count)")
                blackHole(page)
            }
        },
        setup: {
            let fixture = try LMDBFixture(durability: .osBuffered)
            let message = try await sentMessage()
            let queue = StoreQueueKey.queue("conveyor.bench.store")
            try fixture.store.commit(StoreBatch((1...UInt64(backlog)).map {
                .add(StoredMessage(sequence: $0, message: message, targets: [queue]))
            }))
            recovery.set(fixture)
        },
        teardown: {
            recovery.get().close()
            recovery.set(nil)
        })
}
