import ArgumentParser
import Conveyor

/// `conveyor purge`: removes every waiting message of a queue.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Remove every waiting message of a queue.",
        discussion: StoreHelp.discussion
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "queue://NAME or a bare queue name.")
    var queue: String

    func validate() throws {
        _ = try Arguments.queue(queue, command: "purge")
    }

    func run() async throws {
        let target = try Arguments.queue(queue, command: "purge")
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        guard broker.statistics(for: target) != nil else {
            // A queue without messages is not kept by the store, so "empty" and "unknown" look alike.
            Console.write("\(target) holds no messages in the store at \(storeOptions.resolvedDirectory): nothing to purge ('conveyor stats' lists the queues)\n")
            return
        }
        do {
            let removed = try await broker.purge(target)
            Console.write("purged \(removed) message\(removed == 1 ? "" : "s") from \(target)\n")
        } catch {
            throw Arguments.describe(error)
        }
    }
}
