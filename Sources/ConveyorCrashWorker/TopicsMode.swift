// The worker's "topics" mode, for the durable-subscription crash test
// (Tests/ConveyorTests/DurableSubscriptionCrashTests.swift):
//
//     ConveyorCrashWorker topics <lmdb|file> <directory> <first-number>
//
// The crash mode (main.swift) on the topic "crash-topic" instead of a queue. Opens the store the
// same way (sync mode; a FileStore with 64 KiB segments), creates a connection with the client ID
// "crash-worker" and, before anything is published, creates or re-attaches two durable
// subscriptions of the topic (no selector):
//
//     sub-a   consumed by a transacted session: commits, and in one round of seven rolls back
//     sub-b   consumed by a client-acknowledge session: acknowledges, and in one round of eleven
//             recovers
//
// Then, until it is killed, publishes persistent messages numbered from <first-number> (integer
// property "n", text body "message n") as the crash mode sends them, while a task per subscription
// consumes it. The journal is the crash mode's, with a token after the verb of every line about
// one subscription (`sub=a` for sub-a, `sub=b` for sub-b):
//
//     READY                                         the broker is open
//     SUBSCRIBED sub=a                              the durable consumer of sub-a exists (before
//                                                   the first SENDING line of the run)
//     SENDING a..b / SENT a..b                      as in the crash mode
//     DELIVERED sub=a n redelivered=<bool> count=k  sub-a's receive returned message n
//     ACKING sub=a n,… / ACKED sub=a n,…            before / after sub-a's commit of those messages
//     ROLLEDBACK sub=a n,… / RECOVERED sub=b n,…    after a rollback / recover
//     ERROR <text>                                  then the process exits with status 2
//
// Each subscription's backlog is bounded: the publisher waits while more than 200 of this
// process's messages are unacknowledged on either subscription. sub-b's consumer keeps a backlog of
// about 100 messages (it waits before each round until that many wait for it, counting those
// earlier runs left), so that sub-b's backlog is paged through the store and holds messages sub-a
// has acknowledged.

import Conveyor
import Synchronization

/// The topic the topics mode publishes to.
let crashTopic = Topic("crash-topic")

/// The client ID of the topics mode's connection: fixed, so that its durable subscriptions are the
/// same ones in every run.
let crashClientID = "crash-worker"

/// Messages acknowledged on sub-a and on sub-b by this process, for back pressure only.
let ackedOnA = Atomic<Int>(0)
let ackedOnB = Atomic<Int>(0)

/// The backlog sub-b keeps: its consumer holds back while fewer messages than this wait for it.
let subscriptionBLag = 100

/// Waits until at least ``subscriptionBLag`` messages wait for sub-b: the `leftOver` ones that
/// earlier runs left on it, plus this process's publications, less what this process acknowledged on
/// it. So the store always holds a backlog of sub-b (larger than the memory window, so it is paged)
/// that sub-a has mostly acknowledged, and kills land while both are in the store.
func holdBackSubscriptionB(leftOver: Int) async throws {
    while leftOver + sentCount.load(ordering: .relaxed) - ackedOnB.load(ordering: .relaxed) < subscriptionBLag {
        try await Task.sleep(for: .milliseconds(1))
    }
}

/// The topics mode: see the comment at the top of this file. `arguments` follow "topics".
func topics(_ arguments: [String]) async -> Never {
    let (kind, directory, first) = crashArguments(
        arguments, usage: "ConveyorCrashWorker topics <lmdb|file> <directory> <first-number>")
    do {
        let broker = try openCrashBroker(kind: kind, directory: directory)
        let leftOverOnB = broker.durableSubscriptions().first { $0.key.name == "sub-b" }
            .map { $0.statistics.depth + $0.statistics.inFlight } ?? 0
        let connection = try ConnectionFactory(broker: broker).createConnection(clientID: crashClientID)
        try connection.start()
        emit("READY")
        let transacted = try connection.createSession(.transacted)
        let subscriptionA = try await transacted.createDurableConsumer(for: crashTopic, name: "sub-a")
        emit("SUBSCRIBED sub=a")
        let acknowledging = try connection.createSession(.clientAcknowledge)
        let subscriptionB = try await acknowledging.createDurableConsumer(for: crashTopic, name: "sub-b")
        emit("SUBSCRIBED sub=b")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await produce(connection, to: .topic(crashTopic), from: first) {
                    min(ackedOnA.load(ordering: .relaxed), ackedOnB.load(ordering: .relaxed))
                }
            }
            group.addTask {
                try await consume([(transacted, subscriptionA)], tag: "sub=a") { ackedOnA.add($0, ordering: .relaxed) }
            }
            group.addTask {
                try await consume(
                    [(acknowledging, subscriptionB)], tag: "sub=b",
                    holdBack: { try await holdBackSubscriptionB(leftOver: leftOverOnB) },
                    acknowledged: { ackedOnB.add($0, ordering: .relaxed) })
            }
            try await group.next()
        }
        fail("a loop ended")
    } catch {
        fail("\(error)")
    }
}
