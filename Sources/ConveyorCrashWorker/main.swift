// A child process for the crash-safety tests (Tests/ConveyorTests/CrashRecoveryTests.swift).
//
//     ConveyorCrashWorker <lmdb|file> <directory> <first-number>
//     ConveyorCrashWorker <directory> <first-number>          (the same as with lmdb)
//     ConveyorCrashWorker fill <lmdb|file> <directory> <headroom-bytes>
//     ConveyorCrashWorker deliveries <directory>
//
// The fill mode, for the disk-full tests, is described in FillMode.swift, the shared mode (processes
// sharing one store) in SharedMode.swift, the deliveries mode (the LMDB delivery log) in
// DeliveriesMode.swift; the rest of this comment is about the crash mode.
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

/// Messages sent and acknowledged by this process, for back pressure only.
let sentCount = Atomic<Int>(0)
let ackedCount = Atomic<Int>(0)

let queue = Destination.queue(Queue("crash-test"))

/// The FileStore's segment size: the smallest allowed, so that segments roll and compact often.
let fileSegmentSize = 64 << 10

func produce(_ connection: Connection, from first: Int) async throws {
    let transacted = try connection.createSession(.transacted)
    let transactedProducer = try transacted.createProducer(for: queue)
    let plain = try connection.createSession(.autoAcknowledge)
    let plainProducer = try plain.createProducer(for: queue)
    var next = first
    var batch = 0
    while true {
        // Keep this process's backlog bounded so that the queue does not grow without limit.
        while sentCount.load(ordering: .relaxed) - ackedCount.load(ordering: .relaxed) > 200 {
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

func consume(_ connection: Connection) async throws {
    let acknowledging = try connection.createSession(.clientAcknowledge)
    let acknowledgingConsumer = try acknowledging.createConsumer(for: queue)
    let transacted = try connection.createSession(.transacted)
    let transactedConsumer = try transacted.createConsumer(for: queue)
    var round = 0
    while true {
        defer { round += 1 }
        let isTransacted = round % 2 == 1
        let consumer = isTransacted ? transactedConsumer : acknowledgingConsumer
        var numbers: [Int] = []
        var last: Message?
        // Mostly small batches; now and then a large one, so that more messages are in flight.
        let batchSize = round % 13 == 6 ? 30 : round % 5 + 1
        for _ in 0..<batchSize {
            guard let message = try await consumer.receive(timeout: .milliseconds(20)) else { break }
            guard let n = try message.property("n", as: Int.self) else { fail("a message without property n") }
            emit("DELIVERED \(n) redelivered=\(message.redelivered) count=\(message.deliveryCount)")
            numbers.append(n)
            last = message
        }
        guard let last else { continue }
        let list = numbers.map(String.init).joined(separator: ",")
        if isTransacted, round % 7 == 3 {
            try await transacted.rollback()
            emit("ROLLEDBACK \(list)")
        } else if !isTransacted, round % 11 == 4 {
            try await acknowledging.recover()
            emit("RECOVERED \(list)")
        } else {
            emit("ACKING \(list)")
            if isTransacted {
                try await transacted.commit()
            } else {
                try await last.acknowledge()
            }
            emit("ACKED \(list)")
            ackedCount.add(numbers.count, ordering: .relaxed)
        }
    }
}

func run() async {
    var arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "fill" { await fill(Array(arguments.dropFirst())) }  // FillMode.swift
    if arguments.first == "shared" { await shared(Array(arguments.dropFirst())) }  // SharedMode.swift
    if arguments.first == "deliveries" { deliveries(Array(arguments.dropFirst())) }  // DeliveriesMode.swift
    if arguments.count == 2 { arguments.insert("lmdb", at: 0) }
    guard arguments.count == 3, ["lmdb", "file"].contains(arguments[0]), let first = Int(arguments[2]) else {
        fail("usage: ConveyorCrashWorker <lmdb|file> <directory> <first-number>")
    }
    let kind = arguments[0]
    let directory = arguments[1]
    var configuration = BrokerConfiguration()
    // Messages prefetched when the process dies have their delivery counts raised; over many kills
    // they would otherwise be dead-lettered, which is not what this test is about.
    configuration.defaultPolicy.redelivery = RedeliveryPolicy(maximumRedeliveries: -1)
    // A small memory window, so that kills also land while the backlog is paged through the store.
    configuration.memoryWindow = MemoryWindow(maximumMessages: 64, maximumBytes: 1 << 20, pageSize: 16)
    do {
        let store: any MessageStore =
            kind == "file"
            ? FileStore(directory: directory, options: FileStore.Options(durability: .sync, segmentSize: fileSegmentSize))
            : LMDBStore(directory: directory, options: LMDBStore.Options(durability: .sync))
        let broker = try Broker(store: store, configuration: configuration)
        let connection = try ConnectionFactory(broker: broker).createConnection()
        try connection.start()
        emit("READY")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await produce(connection, from: first) }
            group.addTask { try await consume(connection) }
            try await group.next()
        }
        fail("a loop ended")
    } catch {
        fail("\(error)")
    }
}

await run()
