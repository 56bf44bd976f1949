import ArgumentParser
import Conveyor

/// `conveyor unsubscribe`: deletes a durable subscription and its messages.
struct UnsubscribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unsubscribe",
        abstract: "Delete a durable subscription and the messages it holds.",
        discussion: StoreHelp.discussion
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "The subscription name.")
    var name: String

    @Option(help: ArgumentHelp("The client ID that owns the subscription.", valueName: "id"))
    var clientId: String

    func run() async throws {
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        let waiting = broker.statistics().first { $0.name.hasSuffix("#\(clientId):\(name)") }?.depth
        do {
            let connection = try ConnectionFactory(broker: broker).createConnection(clientID: clientId)
            defer { connection.close() }
            try await connection.unsubscribe(name)
        } catch {
            throw Arguments.describe(error)
        }
        Console.write("deleted durable subscription \(clientId):\(name)\(waiting.map { " and its \($0) waiting message\($0 == 1 ? "" : "s")" } ?? "")\n")
    }
}
