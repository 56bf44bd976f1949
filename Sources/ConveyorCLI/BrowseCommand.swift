import ArgumentParser
import Conveyor

/// `conveyor browse`: shows the messages waiting in a queue without consuming them.
struct BrowseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "browse",
        abstract: "Show the messages waiting in a queue, without consuming them.",
        discussion: """
            Messages are listed in delivery order (highest priority first). Nothing is acknowledged or changed.

            \(StoreHelp.discussion)
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "queue://NAME or a bare queue name.")
    var queue: String

    @Option(help: ArgumentHelp("Only messages matching this JMS selector.", valueName: "expression"))
    var selector: String?

    @Option(help: "Show at most this many messages.")
    var limit: Int?

    @Option(help: "Output format: text or json (one object per line).")
    var format: MessageFormatter.Format = .text

    func validate() throws {
        _ = try Arguments.queue(queue, command: "browse")
        try Arguments.selector(selector)
        if let limit, limit < 1 { throw CommandLineError("--limit must be at least 1, not \(limit)") }
    }

    func run() async throws {
        let target = try Arguments.queue(queue, command: "browse")
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        do {
            let connection = try ConnectionFactory(broker: broker).createConnection()
            defer { connection.close() }
            let messages = try connection.createSession().createBrowser(for: target, selector: selector).messages()
            let shown = limit.map { Array(messages.prefix($0)) } ?? messages
            for (index, message) in shown.enumerated() {
                Console.write(MessageFormatter.render(message, format: format, index: index + 1))
            }
            if format == .text {
                let more = messages.count > shown.count ? " (showing \(shown.count))" : ""
                Console.progress("\(messages.count) message\(messages.count == 1 ? "" : "s") waiting on \(target)\(selector.map { " matching \"\($0)\"" } ?? "")\(more)\n")
            }
        } catch {
            throw Arguments.describe(error)
        }
    }
}
