import Conveyor
import Synchronization
import Testing

/// A broker with one started connection, for tests that need the ordinary setup.
struct Fixture: Sendable {
    let location: StoreKind.Location
    let broker: Broker
    let connection: Connection

    init(_ kind: StoreKind, clientID: String? = nil, configuration: BrokerConfiguration = .init()) throws {
        location = StoreKind.Location(kind: kind)
        broker = try Broker(store: try location.makeStore(), configuration: configuration)
        connection = try ConnectionFactory(broker: broker).createConnection(clientID: clientID)
        try connection.start()
    }

    /// A second broker on the same store, after closing this one.
    func reopen(clientID: String? = nil, configuration: BrokerConfiguration = .init()) throws -> Fixture {
        broker.close()
        return try Fixture(location: location, clientID: clientID, configuration: configuration)
    }

    private init(location: StoreKind.Location, clientID: String?, configuration: BrokerConfiguration) throws {
        self.location = location
        broker = try Broker(store: try location.makeStore(), configuration: configuration)
        connection = try ConnectionFactory(broker: broker).createConnection(clientID: clientID)
        try connection.start()
    }

    func close() { broker.close() }
}

/// Waits until `condition` holds, checking every millisecond, for at most `timeout`.
/// - Returns: Whether the condition held before the deadline.
@discardableResult
func waitUntil(timeout: Duration = .seconds(5), _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))  // poll interval of waitUntil
    }
    return try await condition()
}

/// A thread-safe list that listeners append to and tests read.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }

    /// Waits until at least `count` items were recorded.
    @discardableResult
    func waitForCount(_ count: Int, timeout: Duration = .seconds(5)) async -> Bool {
        await waitUntil(timeout: timeout) { self.count >= count }
    }
}

extension MessageConsumer {
    /// Receives up to `count` messages, giving up after `timeout` per message.
    func receive(_ count: Int, timeout: Duration = .seconds(2)) async throws -> [Message] {
        var messages: [Message] = []
        while messages.count < count, let message = try await receive(timeout: timeout) {
            messages.append(message)
        }
        return messages
    }
}

extension MessageProducer {
    /// Sends `count` text messages "0", "1", … and returns them as sent.
    @discardableResult
    func sendTexts(_ count: Int, options: SendOptions? = nil) async throws -> [Message] {
        var sent: [Message] = []
        for index in 0..<count {
            sent.append(try await send(.text("\(index)"), options: options))
        }
        return sent
    }
}
