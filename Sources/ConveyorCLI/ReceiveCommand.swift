import ArgumentParser
import Conveyor
import ConveyorDemos
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `conveyor receive`: consumes messages from a queue or a durable subscription and prints them.
struct ReceiveCommand: AsyncParsableCommand {
    enum AcknowledgeMode: String, ExpressibleByArgument, CaseIterable {
        case auto
        case client
        case transacted
    }

    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive (consume) messages and print them.",
        discussion: """
            Receives until --count messages arrived, or until none arrives for --timeout (default 1s); with \
            --follow, waits for ever (stop with Ctrl-C). Messages are printed with their headers, properties and \
            body, or as one JSON object per line with --format json.

            --ack auto acknowledges each message as it is received; client acknowledges it after it is printed; \
            transacted commits after each printed message (with --follow) or once at the end.

            A topic is read through a durable subscription: --durable NAME --client-id ID (it is created if \
            needed and keeps messages between runs). Without one, a topic consumer only sees messages \
            published while it runs.

            Examples:
              conveyor receive orders --count 1
              conveyor receive orders --selector "region = 'EU' AND total > 100" --format json
              conveyor receive topic://prices --durable archive --client-id billing

            \(StoreHelp.discussion)
            """
    )

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "queue://NAME, topic://NAME, or a bare queue name.")
    var destination: String

    @Option(help: ArgumentHelp("A JMS message selector, e.g. \"region = 'EU' AND total > 100\".", valueName: "expression"))
    var selector: String?

    @Option(help: "Stop after this many messages.")
    var count: Int?

    @Option(help: ArgumentHelp("Stop when no message arrives for this long, e.g. 500ms, 5s.", valueName: "duration"))
    var timeout: String = "1s"

    @Flag(help: "Wait for messages for ever (Ctrl-C to stop).")
    var follow = false

    @Option(help: "Acknowledge mode: auto, client or transacted.")
    var ack: AcknowledgeMode = .auto

    @Option(help: ArgumentHelp("Read a topic through the durable subscription NAME (needs --client-id).", valueName: "name"))
    var durable: String?

    @Option(help: ArgumentHelp("The client ID owning the durable subscription.", valueName: "id"))
    var clientId: String?

    @Option(help: "Output format: text or json (one object per line).")
    var format: MessageFormatter.Format = .text

    func validate() throws {
        let target = try Arguments.destination(destination)
        _ = try Arguments.duration(timeout, option: "--timeout")
        try Arguments.selector(selector)
        if let count, count < 1 { throw CommandLineError("--count must be at least 1, not \(count)") }
        if durable != nil, clientId == nil { throw CommandLineError("--durable needs --client-id: a durable subscription is named by client ID and name") }
        if durable != nil, case .queue = target { throw CommandLineError("--durable applies to topics; \(target) is a queue") }
    }

    func run() async throws {
        let target = try Arguments.destination(destination)
        let timeout = try Arguments.duration(timeout, option: "--timeout") ?? .seconds(1)
        var configuration = BrokerConfiguration()
        if count != nil || ack != .auto { configuration.prefetch = 1 }
        let broker = try storeOptions.openBroker(createIfMissing: false, configuration: configuration)
        defer { broker.close() }
        var received = 0
        do {
            let connection = try ConnectionFactory(broker: broker).createConnection(clientID: clientId)
            defer { connection.close() }
            let stop = Self.closeOnInterrupt(connection)
            defer { stop.cancel() }
            let session = try connection.createSession(sessionMode)
            let consumer: MessageConsumer
            switch target {
            case .topic(let topic):
                if let durable {
                    consumer = try await session.createDurableConsumer(for: topic, name: durable, selector: selector)
                } else {
                    Console.progress("note: without --durable, this topic consumer sees only messages published while it runs\n")
                    consumer = try session.createConsumer(for: target, selector: selector)
                }
            case .queue:
                consumer = try session.createConsumer(for: target, selector: selector)
            }
            try connection.start()
            while count.map({ received < $0 }) ?? true {
                let message = follow ? try await consumer.receive() : try await consumer.receive(timeout: timeout)
                guard let message else { break }
                received += 1
                Console.write(MessageFormatter.render(message, format: format, index: received))
                switch ack {
                case .auto: break
                case .client: try await message.acknowledge()
                case .transacted: if follow { try await session.commit() }
                }
            }
            if ack == .transacted, !follow, !connection.isClosed { try await session.commit() }
        } catch {
            throw Arguments.describe(error)
        }
        if received == 0, format == .text {
            Console.progress("no message\(selector.map { " matching \"\($0)\"" } ?? "") on \(target) within \(CommandLineParsing.format(timeout))\n")
        }
    }

    private var sessionMode: SessionMode {
        switch ack {
        case .auto: .autoAcknowledge
        case .client: .clientAcknowledge
        case .transacted: .transacted
        }
    }

    /// On Ctrl-C, closes the connection so that a waiting receive returns and the command ends cleanly
    /// (unacknowledged messages go back to the store).
    static func closeOnInterrupt(_ connection: Connection) -> any DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { connection.close() }
        source.resume()
        return source
    }
}
