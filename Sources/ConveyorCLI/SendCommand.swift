import ArgumentParser
import Conveyor
import ConveyorDemos
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `conveyor send`: stores messages on a queue or publishes them to a topic.
struct SendCommand: AsyncParsableCommand {
    enum Persistence: String, EnumerableFlag {
        case persistent
        case nonPersistent

        static func help(for value: Persistence) -> ArgumentHelp? {
            switch value {
            case .persistent: "Store the message durably before the command returns (the default)."
            case .nonPersistent: "Keep the message in memory only (lost when this command ends unless consumed)."
            }
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to a queue or topic.",
        discussion: """
            The body is the BODY argument, the contents of --file, or standard input when it is piped. \
            Destinations are queue://NAME or topic://NAME; a bare name is a queue. A message published to a \
            topic is kept only for the durable subscriptions that exist.

            Examples:
              conveyor send orders 'order #1' --property region=EU --property total=120
              conveyor send topic://prices --file price.json --ttl 30s
              echo hello | conveyor send queue://greetings --count 3

            \(StoreHelp.discussion)
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "queue://NAME, topic://NAME, or a bare queue name.")
    var destination: String

    @Argument(help: "The message text (else --file, else standard input).")
    var body: String?

    @Option(help: ArgumentHelp("Read the body from a file (UTF-8 text becomes a text message, anything else bytes).", valueName: "path"))
    var file: String?

    @Option(name: .customLong("property"), help: ArgumentHelp("A property name=value (repeatable); force a type with name:type=value (string, bool, int, long, double).", valueName: "k=v"))
    var properties: [String] = []

    @Option(help: "Priority, 0 (lowest) to 9 (highest).")
    var priority: Int = 4

    @Option(help: ArgumentHelp("Time to live, e.g. 30s, 5m; the message expires if not consumed in time.", valueName: "duration"))
    var ttl: String?

    @Option(help: ArgumentHelp("Delivery delay, e.g. 500ms, 5s: the message becomes deliverable only then.", valueName: "duration"))
    var delay: String?

    @Flag var persistence: Persistence = .persistent

    @Option(help: "How many copies to send.")
    var count: Int = 1

    @Option(help: "The JMSCorrelationID header.")
    var correlationId: String?

    @Option(help: "The JMSType header.")
    var type: String?

    func validate() throws {
        guard (0...9).contains(priority) else { throw CommandLineError("--priority must be 0 to 9, not \(priority)") }
        guard count >= 1 else { throw CommandLineError("--count must be at least 1, not \(count)") }
        if body != nil, file != nil { throw CommandLineError("give the body either as an argument or with --file, not both") }
        _ = try Arguments.destination(destination)
        _ = try Arguments.duration(ttl, option: "--ttl")
        _ = try Arguments.duration(delay, option: "--delay")
        for property in properties { _ = try parse(property) }
    }

    func run() async throws {
        let target = try Arguments.destination(destination)
        var message = try readMessage()
        for property in properties {
            let (name, value) = try parse(property)
            do {
                try message.setProperty(value: value, forName: name)
            } catch {
                throw CommandLineError("property '\(name)': \(error.message)")
            }
        }
        message.correlationID = correlationId
        message.type = type
        var options = SendOptions(priority: priority)
        options.deliveryMode = persistence == .persistent ? .persistent : .nonPersistent
        if let ttl = try Arguments.duration(ttl, option: "--ttl") {
            guard ttl > .zero else { throw CommandLineError("--ttl must be more than zero") }
            options.timeToLive = ttl
        }
        if let delay = try Arguments.duration(delay, option: "--delay") { options.deliveryDelay = delay }
        if options.deliveryMode == .nonPersistent {
            Console.progress("note: non-persistent messages live in memory only, and this command ends now: no one will receive them\n")
        }

        let broker = try storeOptions.openBroker(createIfMissing: true)
        defer { broker.close() }
        do {
            let connection = try ConnectionFactory(broker: broker).createConnection()
            defer { connection.close() }
            let session = try connection.createSession(count > 1 ? .transacted : .autoAcknowledge)
            let producer = try session.createProducer(for: target)
            var first: Message?
            var last: Message?
            for _ in 0..<count {
                let sent = try await producer.send(message, options: options)
                if first == nil { first = sent }
                last = sent
            }
            if session.isTransacted { try await session.commit() }
            if count == 1, let first {
                Console.write("sent \(first.messageID.map(String.init(describing:)) ?? "") → \(target)\n")
            } else if let first, let last {
                Console.write("sent \(count) messages → \(target) (\(first.messageID.map(String.init(describing:)) ?? "") … \(last.messageID.map(String.init(describing:)) ?? ""))\n")
            }
            if case .topic = target, broker.statistics().contains(where: { $0.name.hasPrefix("\(target)#") }) == false {
                Console.progress("note: \(target) has no durable subscription, so no one keeps this message (create one with 'conveyor receive \(target) --durable NAME --client-id ID')\n")
            }
        } catch {
            throw Arguments.describe(error)
        }
    }

    private func parse(_ property: String) throws -> (name: String, value: MessageValue) {
        do {
            return try CommandLineParsing.property(property)
        } catch {
            throw CommandLineError(error.message)
        }
    }

    private func readMessage() throws -> Message {
        if let body { return .text(body) }
        let data: Data
        if let file {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw CommandLineError("cannot read --file \(file): no such file, or not readable")
            }
            data = contents
        } else {
            guard isatty(STDIN_FILENO) == 0 else {
                throw CommandLineError("no body: give it as an argument, with --file PATH, or pipe it on standard input")
            }
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        if var text = String(data: data, encoding: .utf8) {
            // `echo hello | conveyor send q` sends "hello", not "hello\n".
            if file == nil, text.hasSuffix("\n") { text.removeLast() }
            return .text(text)
        }
        return .bytes(data)
    }
}
