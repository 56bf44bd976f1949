import ArgumentParser
import Conveyor

/// `conveyor subscriptions`: the durable subscriptions of the store.
///
/// The broker has no listing API for subscriptions yet, so the list is derived from
/// `Broker.statistics()`, whose subscription entries are named `topic://TOPIC#CLIENT:NAME` (or
/// `topic://TOPIC#NAME` for shared ones without a client ID).
struct SubscriptionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscriptions",
        abstract: "List the durable subscriptions: topic, client ID, name and messages waiting.",
        discussion: StoreHelp.discussion
    )

    @OptionGroup var storeOptions: StoreOptions

    /// One subscription parsed from a statistics name.
    struct Entry: Equatable {
        var topic: String
        var clientID: String?
        var name: String
    }

    /// Parses `topic://TOPIC#CLIENT:NAME` or `topic://TOPIC#NAME`; `nil` for queues.
    static func parse(_ statisticsName: String) -> Entry? {
        guard statisticsName.hasPrefix("topic://"), let hash = statisticsName.firstIndex(of: "#") else { return nil }
        let topic = String(statisticsName[statisticsName.index(statisticsName.startIndex, offsetBy: 8)..<hash])
        let key = statisticsName[statisticsName.index(after: hash)...]
        if let colon = key.firstIndex(of: ":") {
            return Entry(topic: topic, clientID: String(key[..<colon]), name: String(key[key.index(after: colon)...]))
        }
        return Entry(topic: topic, clientID: nil, name: String(key))
    }

    func run() async throws {
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        let rows: [[String]] = broker.statistics().compactMap { statistics in
            guard let entry = Self.parse(statistics.name) else { return nil }
            return ["topic://\(entry.topic)", entry.clientID ?? "(shared)", entry.name, "\(statistics.depth)"]
        }
        guard !rows.isEmpty else {
            Console.write("No durable subscriptions in the store at \(storeOptions.resolvedDirectory).\n")
            return
        }
        Console.write(Table.render(header: ["topic", "client ID", "name", "waiting"], rows: rows, leftAligned: 3))
    }
}
