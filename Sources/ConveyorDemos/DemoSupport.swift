import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization

/// A fresh LMDB store in a temporary directory, deleted when the demo ends.
struct TemporaryStore {
    /// The store's directory.
    let directory: URL

    /// Runs `body` with a new temporary store and deletes the directory afterwards, whatever happens.
    static func with<T>(_ label: String, _ body: (TemporaryStore) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-demo-\(label)-\(UUID().uuidString)")
        let store = TemporaryStore(directory: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(store)
    }

    /// Opens a broker on the store (sync durability: a send that returned is on disk).
    func openBroker(_ configuration: BrokerConfiguration = .init()) throws -> Broker {
        try Broker(store: LMDBStore(directory: directory.path), configuration: configuration)
    }
}

/// Who received what, recorded from several tasks at once.
final class Recorder: Sendable {
    private let state = Mutex<[String: [String]]>([:])

    /// Records that `consumer` received `body`.
    func record(_ consumer: String, _ body: String) {
        state.withLock { $0[consumer, default: []].append(body) }
    }

    /// How many messages every consumer received together.
    var total: Int { state.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// How many messages `consumer` received.
    func count(_ consumer: String) -> Int { state.withLock { $0[consumer]?.count ?? 0 } }

    /// Everything recorded.
    var received: [String: [String]] { state.withLock { $0 } }
}

/// Waits until `condition` holds, checking every few milliseconds, or fails after `timeout`.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw DemoError("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(2))
    }
}

extension Message {
    /// The text body, or a short description of another body, for narration.
    var shown: String {
        if let text { return text }
        return "<\(body.kind)>"
    }

    /// `" (redelivered, delivery #2)"` for a redelivered message, else `""`.
    var redeliveryNote: String {
        redelivered ? " (redelivered, delivery #\(deliveryCount))" : ""
    }
}

extension Broker {
    /// The statistics of one queue or subscription by its display name (`queue://orders`,
    /// `topic://orders#inventory:orders`), or `nil` if it was never used.
    func counters(_ name: String) -> DestinationStatistics? {
        statistics().first { $0.name == name }
    }

    /// Messages a queue or subscription holds: waiting plus delivered and not yet acknowledged.
    func held(_ name: String) -> Int {
        counters(name).map { $0.depth + $0.inFlight } ?? 0
    }
}

extension Destination {
    /// A queue.
    static func q(_ name: String) -> Destination { .queue(Queue(name)) }
    /// A topic.
    static func t(_ name: String) -> Destination { .topic(Topic(name)) }
}

/// A count shared between tasks.
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)

    /// Adds one.
    func increment() { storage.add(1, ordering: .relaxed) }

    /// The count.
    var value: Int { storage.load(ordering: .relaxed) }
}
