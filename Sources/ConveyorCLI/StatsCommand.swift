import ArgumentParser
import Conveyor

/// `conveyor stats`: the counters of every queue and durable subscription.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show every queue and subscription: depth, in flight, consumers, enqueued, dequeued, expired, dead-lettered.",
        discussion: """
            With the LMDB store (the default), the counters are those of every process sharing the store, \
            kept since the store was created: what earlier commands and applications sent, received, expired \
            or dead-lettered, and what the processes open now are doing, which shows here within about a \
            quarter of a second. Consumers and in flight are live: open consumers and unacknowledged messages \
            of the processes open now. Depth is what waits: stored messages not in flight. With the file and \
            memory stores, which are single-process, the counters are this command's own since it opened the \
            store (mostly zeros) apart from depth.

            \(StoreHelp.discussion)
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Output format: text or json (one object per line).")
    var format: MessageFormatter.Format = .text

    func run() async throws {
        let broker = try storeOptions.openBroker(createIfMissing: false)
        defer { broker.close() }
        let statistics = broker.statistics()
        switch format {
        case .json:
            for entry in statistics {
                let fields: [(String, String)] = [
                    ("name", JSONText.string(entry.name)), ("depth", "\(entry.depth)"), ("depthBytes", "\(entry.depthBytes)"),
                    ("inFlight", "\(entry.inFlight)"), ("consumers", "\(entry.consumers)"), ("enqueued", "\(entry.enqueued)"),
                    ("dequeued", "\(entry.dequeued)"), ("expired", "\(entry.expired)"), ("deadLettered", "\(entry.deadLettered)"),
                    ("dropped", "\(entry.dropped)"),
                ]
                Console.write("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n")
            }
        case .text:
            guard !statistics.isEmpty else {
                Console.write("The store at \(storeOptions.resolvedDirectory) has no queues or subscriptions yet.\n")
                return
            }
            let header = ["destination", "depth", "in flight", "consumers", "enqueued", "dequeued", "expired", "dead-lettered", "dropped"]
            let rows = statistics.map { entry in
                [entry.name, "\(entry.depth)", "\(entry.inFlight)", "\(entry.consumers)", "\(entry.enqueued)",
                 "\(entry.dequeued)", "\(entry.expired)", "\(entry.deadLettered)", "\(entry.dropped)"]
            }
            Console.write(Table.render(header: header, rows: rows))
        }
    }
}

/// A plain text table: the first column left-aligned, the others right-aligned.
enum Table {
    static func render(header: [String], rows: [[String]], leftAligned: Int = 1) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (index, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if index > 0 { text += "  " }
                text += index < leftAligned ? cell + padding : padding + cell
            }
            while text.last == " " { text.removeLast() }
            return text
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}
