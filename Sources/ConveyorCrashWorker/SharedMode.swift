// The worker's "shared" mode, for the multi-process tests (Tests/ConveyorTests/
// SharedStoreProcessTests.swift): one role of a group of processes sharing an LMDB store
// (`sharing: .processes`).
//
//     ConveyorCrashWorker shared <directory> produce <queue|topic://name> <first> <count> [nonpersistent] [stay]
//     ConveyorCrashWorker shared <directory> consume <queue> <auto|client|transacted> [hold] [selector=<expr>]
//     ConveyorCrashWorker shared <directory> send-and-hold <queue> <count>
//     ConveyorCrashWorker shared <directory> subscribe <topic> [durable <clientID> <name>]
//     ConveyorCrashWorker shared <directory> open
//
// produce  sends messages first..<first+count (integer property "n") and prints `SENT a..b`, then
//          closes the broker and exits 0; with `stay`, keeps the broker open until stdin closes
//          (or it is killed), then exits 0 without closing it.
// consume  prints `READY` once its consumer exists, then `GOT n redelivered=<bool>` for each message
//          after acknowledging it (client mode: after `acknowledge()`, transacted: after `commit()`),
//          until stdin closes or it is killed. With `hold` (client mode only), it never
//          acknowledges: it prints `GOT` lines as messages arrive and keeps them, for the crash
//          hand-over test. `selector=<expr>` gives the consumer a message selector.
// send-and-hold sends <count> messages (n = 1…count), then receives one with a client-acknowledge
//          consumer and keeps it unacknowledged, printing `HOLDING n`, until stdin closes or it is
//          killed (for the statistics tests: a consumer and a message in flight in another process).
// subscribe the same as consume for a topic subscriber in auto mode (non-durable, or durable with the
//          given client ID and subscription name).
// open     opens the store, prints `OPENED`, closes it and exits 0 (or prints `ERROR <message>`).
//
// Every line is one write(2) (see `emit`). Errors print `ERROR <message>` and exit with status 2.

import Conveyor
import ConveyorLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shared mode: see the comment at the top of this file. `arguments` follow "shared".
func shared(_ arguments: [String]) async -> Never {
    guard arguments.count >= 2 else { fail("usage: ConveyorCrashWorker shared <directory> <role> …") }
    let directory = arguments[0]
    let role = arguments[1]
    let rest = Array(arguments.dropFirst(2))
    let broker: Broker
    do {
        broker = try Broker(store: LMDBStore(directory: directory, options: .init(durability: .sync, sharing: .processes)))
    } catch {
        fail(error.message)
    }
    if role == "open" {
        emit("OPENED")
        broker.close()
        exit(0)
    }
    do {
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        switch role {
        case "produce":
            guard rest.count >= 3, let first = Int(rest[1]), let count = Int(rest[2]) else { fail("usage: produce <destination> <first> <count> [nonpersistent]") }
            let destination = rest[0].hasPrefix("topic://") ? Destination.topic(Topic(String(rest[0].dropFirst(8)))) : .queue(Queue(rest[0]))
            let options = rest.dropFirst(3).contains("nonpersistent") ? SendOptions.nonPersistent : SendOptions()
            let producer = try connection.createSession().createProducer(for: destination)
            for n in first..<first + count {
                _ = try await producer.send(try Message.text("message \(n)").with("n", n), options: options)
            }
            emit("SENT \(first)..\(first + count - 1)")
            if rest.dropFirst(3).contains("stay") { await stayUntilEndOfInput() }
            broker.close()
            exit(0)
        case "send-and-hold":
            guard rest.count >= 2, let count = Int(rest[1]) else { fail("usage: send-and-hold <queue> <count>") }
            let queue = Queue(rest[0])
            let producer = try connection.createSession().createProducer(for: .queue(queue))
            for n in 1...count {
                _ = try await producer.send(try Message.text("message \(n)").with("n", n))
            }
            let consumer = try connection.createSession(.clientAcknowledge).createConsumer(for: .queue(queue))
            guard let message = try await consumer.receive(timeout: .seconds(30)) else { fail("nothing to hold") }
            emit("HOLDING \(try message.property("n", as: Int.self) ?? 0)")
            await stayUntilEndOfInput()
        case "consume":
            guard rest.count >= 2 else { fail("usage: consume <queue> <auto|client|transacted> [hold]") }
            let mode: SessionMode = switch rest[1] {
            case "client": .clientAcknowledge
            case "transacted": .transacted
            default: .autoAcknowledge
            }
            let session = try connection.createSession(mode)
            let selector = rest.first { $0.hasPrefix("selector=") }.map { String($0.dropFirst("selector=".count)) }
            let consumer = try session.createConsumer(for: .queue(Queue(rest[0])), selector: selector)
            try await report(consumer, session: session, hold: rest.dropFirst(2).contains("hold"))
        case "subscribe":
            guard !rest.isEmpty else { fail("usage: subscribe <topic> [durable <clientID> <name>]") }
            let session = try connection.createSession()
            let consumer: MessageConsumer
            if rest.count >= 4, rest[1] == "durable" {
                let durable = try ConnectionFactory(broker: broker).createConnection(clientID: rest[2])
                try durable.start()
                consumer = try await durable.createSession().createDurableConsumer(for: Topic(rest[0]), name: rest[3])
            } else {
                consumer = try session.createConsumer(for: .topic(Topic(rest[0])))
            }
            try await report(consumer, session: session, hold: false)
        default:
            fail("unknown role \(role)")
        }
    } catch {
        fail("\(error)")
    }
}

/// Blocks until stdin reaches its end (the test closes it to stop the worker), then exits 0.
func waitForEndOfInput() -> Never {
    var byte: UInt8 = 0
    while read(0, &byte, 1) > 0 {}
    exit(0)
}

/// Keeps the process (and its broker) running until stdin reaches its end, waiting on a thread of
/// its own so that the broker's tasks keep the cooperative pool.
private func stayUntilEndOfInput() async -> Never {
    Thread { waitForEndOfInput() }.start()
    while true { try? await Task.sleep(for: .seconds(3_600)) }
}

/// Prints `READY`, then a `GOT` line per message (after acknowledging it, unless holding), until
/// stdin reaches its end (the test closes it to stop the worker).
private func report(_ consumer: MessageConsumer, session: Session, hold: Bool) async throws -> Never {
    emit("READY")
    let stop = Thread { waitForEndOfInput() }
    stop.start()
    while true {
        guard let message = try await consumer.receive(timeout: .seconds(1)) else { continue }
        guard let n = try message.property("n", as: Int.self) else { fail("a message without property n") }
        if !hold {
            if session.mode == .transacted { try await session.commit() }
            if session.mode == .clientAcknowledge { try await message.acknowledge() }
        }
        emit("GOT \(n) redelivered=\(message.redelivered)")
    }
}
