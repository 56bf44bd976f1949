// A child process for the crash-safety tests (Tests/ConveyorTests/CrashRecoveryTests.swift).
//
//     ConveyorCrashWorker <lmdb|file> <directory> <first-number>
//     ConveyorCrashWorker <directory> <first-number>          (the same as with lmdb)
//     ConveyorCrashWorker fill <lmdb|file> <directory> <headroom-bytes>
//     ConveyorCrashWorker deliveries <directory>
//     ConveyorCrashWorker topics <lmdb|file> <directory> <first-number>
//
// The fill mode, for the disk-full tests, is described in FillMode.swift, the shared mode (processes
// sharing one store) in SharedMode.swift, the deliveries mode (the LMDB delivery log) in
// DeliveriesMode.swift, the topics mode (the crash mode on a topic with two durable subscriptions)
// in TopicsMode.swift; the rest of this comment is about the crash mode.
//
// Opens an LMDBStore or a FileStore in sync mode on <directory> and, until it is killed, produces
// messages numbered from <first-number> (integer property "n") on the queue "crash-test" and
// consumes them, writing a journal to stdout. Every line is written with one write(2) call (atomic
// on a pipe) after the operation it reports returned, so a line never claims more than happened;
// an operation that completed just before a kill may lack its line. The journal:
//
//     READY                                   the broker is open
//     SENDING a..b / SENT a..b                before / after committing (or sync-sending) a..b
//     DELIVERED n redelivered=<bool> count=k  receive returned message n
//     ACKING n,m,… / ACKED n,m,…              before / after commit or acknowledge of those messages
//     ROLLEDBACK n,… / RECOVERED n,…          after a rollback / recover of those messages
//     ERROR <text>                            then the process exits with status 2
//
// The producer and the consumer run as two concurrent tasks (so their commits can share a sync);
// each task's lines are in its program order. Everything is deterministic apart from timing.
//
// The FileStore uses the smallest segment size (64 KiB), so that a run of a few hundred
// milliseconds rolls segments and compacts them in the background, and kills land in those too.

import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one journal line to stdout with a single unbuffered write.
func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(1, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                exit(3)
            }
            offset += written
        }
    }
}

func fail(_ message: String) -> Never {
    emit("ERROR \(message)")
    exit(2)
}

/// Messages sent by this process, for back pressure only.
let sentCount = Atomic<Int>(0)
/// Messages of the queue acknowledged by this process, for back pressure only.
let ackedCount = Atomic<Int>(0)

let queue = Destination.queue(Queue("crash-test"))

/// The FileStore's segment size: the smallest allowed, so that segments roll and compact often.
let fileSegmentSize = 64 << 10

/// Produces to `destination` until killed: messages numbered from `first`, in transacted batches of
/// one to four and, every third batch, as single synchronous sends. Waits while more than 200 of
/// this process's messages are not yet acknowledged; `acknowledged` tells how many are (for a
/// topic, the fewest any subscription acknowledged).
func produce(_ connection: Connection, to destination: Destination, from first: Int,
             acknowledged: @Sendable () -> Int) async throws {
    let transacted = try connection.createSession(.transacted)
    let transactedProducer = try transacted.createProducer(for: destination)
    let plain = try connection.createSession(.autoAcknowledge)
    let plainProducer = try plain.createProducer(for: destination)
    var next = first
    var batch = 0
    while true {
        // Keep this process's backlog bounded so that the queue does not grow without limit.
        while sentCount.load(ordering: .relaxed) - acknowledged() > 200 {
            try await Task.sleep(for: .milliseconds(1))
        }
        let size = batch % 4 + 1
        if batch % 3 == 2 {
            // Synchronous persistent sends: each returns once stored.
            for n in next..<next + size {
                emit("SENDING \(n)..\(n)")
                _ = try await plainProducer.send(try Message.text("message \(n)").with("n", n))
                emit("SENT \(n)..\(n)")
            }
        } else {
            let last = next + size - 1
            emit("SENDING \(next)..\(last)")
            for n in next...last {
                _ = try await transactedProducer.send(try Message.text("message \(n)").with("n", n))
            }
            try await transacted.commit()
            emit("SENT \(next)..\(last)")
        }
        sentCount.add(size, ordering: .relaxed)
        next += size
        batch += 1
    }
}

/// A consumer and the session it belongs to (which commits, acknowledges, rolls back or recovers).
typealias SessionConsumer = (session: Session, consumer: MessageConsumer)

/// Consumes in rounds until killed. Round r receives a batch (mostly one to five messages, now and
/// then thirty) with `consumers[r % consumers.count]`, then settles it by the session's mode: a
/// transacted session commits it, or in one round of seven rolls it back; a client-acknowledge
/// session acknowledges it, or in one round of eleven recovers it.
/// - Parameters:
///   - tag: A token written after the verb of each line (the topics mode's `sub=a`), or `nil`.
///   - holdBack: Awaited before each round, to let a consumer fall behind.
///   - acknowledged: Told how many messages each `ACKED` line covered, for back pressure.
func consume(_ consumers: [SessionConsumer], tag: String? = nil, holdBack: @Sendable () async throws -> Void = {},
             acknowledged: @Sendable (Int) -> Void) async throws {
    let tag = tag.map { " " + $0 } ?? ""
    var round = 0
    while true {
        defer { round += 1 }
        try await holdBack()
        let (session, consumer) = consumers[round % consumers.count]
        let isTransacted = session.mode == .transacted
        var numbers: [Int] = []
        var last: Message?
        // Mostly small batches; now and then a large one, so that more messages are in flight.
        let batchSize = round % 13 == 6 ? 30 : round % 5 + 1
        for _ in 0..<batchSize {
            guard let message = try await consumer.receive(timeout: .milliseconds(20)) else { break }
            guard let n = try message.property("n", as: Int.self) else { fail("a message without property n") }
            emit("DELIVERED\(tag) \(n) redelivered=\(message.redelivered) count=\(message.deliveryCount)")
            numbers.append(n)
            last = message
        }
        guard let last else { continue }
        let list = numbers.map(String.init).joined(separator: ",")
        if isTransacted, round % 7 == 3 {
            try await session.rollback()
            emit("ROLLEDBACK\(tag) \(list)")
        } else if !isTransacted, round % 11 == 4 {
            try await session.recover()
            emit("RECOVERED\(tag) \(list)")
        } else {
            emit("ACKING\(tag) \(list)")
            if isTransacted {
                try await session.commit()
            } else {
                try await last.acknowledge()
            }
            emit("ACKED\(tag) \(list)")
            acknowledged(numbers.count)
        }
    }
}

/// The arguments of the crash and topics modes, `<lmdb|file> <directory> <first-number>`; exits
/// with `usage` if they are not.
func crashArguments(_ arguments: [String], usage: String) -> (kind: String, directory: String, first: Int) {
    guard arguments.count == 3, ["lmdb", "file"].contains(arguments[0]), let first = Int(arguments[2]) else {
        fail("usage: \(usage)")
    }
    return (arguments[0], arguments[1], first)
}

/// The broker of the crash and topics modes: an LMDBStore or a FileStore (`kind`, with small
/// segments) in sync mode on `directory`, unlimited redeliveries and a small memory window.
func openCrashBroker(kind: String, directory: String) throws -> Broker {
    var configuration = BrokerConfiguration()
    // Messages prefetched when the process dies have their delivery counts raised; over many kills
    // they would otherwise be dead-lettered, which is not what this test is about.
    configuration.defaultPolicy.redelivery = RedeliveryPolicy(maximumRedeliveries: -1)
    // A small memory window, so that kills also land while the backlog is paged through the store.
    configuration.memoryWindow = MemoryWindow(maximumMessages: 64, maximumBytes: 1 << 20, pageSize: 16)
    let store: any MessageStore =
        kind == "file"
        ? FileStore(directory: directory, options: FileStore.Options(durability: .sync, segmentSize: fileSegmentSize))
        : LMDBStore(directory: directory, options: crashTestLMDBOptions())
    return try Broker(store: store, configuration: configuration)
}

/// Sync mode, with a small commit-log checkpoint threshold so that kills land during checkpoints
/// and between them, not only in a log that is never checkpointed before the process dies.
func crashTestLMDBOptions() -> LMDBStore.Options {
    var options = LMDBStore.Options(durability: .sync)
    options.checkpointBytes = 32 << 10
    return options
}

func run() async {
    var arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "fill" { await fill(Array(arguments.dropFirst())) }  // FillMode.swift
    if arguments.first == "shared" { await shared(Array(arguments.dropFirst())) }  // SharedMode.swift
    if arguments.first == "deliveries" { deliveries(Array(arguments.dropFirst())) }  // DeliveriesMode.swift
    if arguments.first == "topics" { await topics(Array(arguments.dropFirst())) }  // TopicsMode.swift
    if arguments.count == 2 { arguments.insert("lmdb", at: 0) }
    let (kind, directory, first) = crashArguments(arguments, usage: "ConveyorCrashWorker <lmdb|file> <directory> <first-number>")
    do {
        let connection = try ConnectionFactory(broker: try openCrashBroker(kind: kind, directory: directory)).createConnection()
        try connection.start()
        emit("READY")
        let acknowledging = try connection.createSession(.clientAcknowledge)
        let transacted = try connection.createSession(.transacted)
        // Odd rounds consume transacted, even rounds with client acknowledgement.
        let consumers: [SessionConsumer] = [
            (acknowledging, try acknowledging.createConsumer(for: queue)),
            (transacted, try transacted.createConsumer(for: queue)),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await produce(connection, to: queue, from: first) { ackedCount.load(ordering: .relaxed) }
            }
            group.addTask {
                try await consume(consumers) { ackedCount.add($0, ordering: .relaxed) }
            }
            try await group.next()
        }
        fail("a loop ended")
    } catch {
        fail("\(error)")
    }
}

await run()
