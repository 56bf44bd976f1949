import ArgumentParser
import Conveyor

/// `conveyor subscriptions`: the durable subscriptions of the store.
struct SubscriptionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscriptions",
        abstract: "List the durable subscriptions: topic, client ID, name, selector and messages waiting.",
        discussion: StoreHelp.discussion
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        let rows: [[String]] = broker.durableSubscriptions().map { subscription in
            ["\(subscription.topic)", subscription.key.clientID ?? "(shared)", subscription.key.name,
             subscription.selector ?? "", "\(subscription.statistics.depth)"]
        }
        guard !rows.isEmpty else {
            Console.write("No durable subscriptions in the store at \(storeOptions.resolvedDirectory).\n")
            return
        }
        Console.write(Table.render(header: ["topic", "client ID", "name", "selector", "waiting"], rows: rows, leftAligned: 4))
    }
}
