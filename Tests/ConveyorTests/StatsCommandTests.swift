import Foundation
import Testing

/// `conveyor stats` counts what earlier commands did: each command is a process of its own that
/// opens the LMDB store shared, and ends before the next starts.
extension HeavyTests {
@Suite("conveyor stats", .timeLimit(.minutes(2)))
struct StatsCommandTests {
    let temporary = SharedTemporaryDirectory()

    var command: ConveyorCommand { ConveyorCommand(directory: temporary.path) }

    func statistics(of name: String) async throws -> [String: Any] {
        let found = try await command.statistics(of: name)
        #expect(found != nil, "stats does not list \(name)")
        return found ?? [:]
    }

    @Test
    func statsCountsWhatEarlierCommandsSentAndReceived() async throws {
        _ = try await command.run(["send", "orders", "first"])
        _ = try await command.run(["send", "orders", "second"])
        let sent = try await statistics(of: "queue://orders")
        #expect(sent["enqueued"] as? Int == 2)
        #expect(sent["depth"] as? Int == 2)
        #expect(sent["dequeued"] as? Int == 0)

        _ = try await command.run(["receive", "orders", "--count", "1", "--timeout", "5s"])
        let received = try await statistics(of: "queue://orders")
        #expect(received["enqueued"] as? Int == 2)
        #expect(received["dequeued"] as? Int == 1)
        #expect(received["depth"] as? Int == 1)
        #expect(received["consumers"] as? Int == 0)
        #expect(received["inFlight"] as? Int == 0)
    }
}
}

/// `conveyor receive --follow` in one terminal prints what `conveyor send` in another sends.
extension HeavyTests {
@Suite("conveyor across processes", .timeLimit(.minutes(2)))
struct CommandsAcrossProcessesTests {
    let temporary = SharedTemporaryDirectory()

    @Test
    func receiveFollowPrintsWhatAnotherProcessSendsAtOnce() async throws {
        let command = ConveyorCommand(directory: temporary.path)
        _ = try await command.run(["send", "orders", "sent before anyone listened"])
        let follower = try command.start(["receive", "orders", "--follow", "--format", "json"])
        defer { follower.killIfRunning() }
        let caughtUp = await waitUntil(timeout: .seconds(30)) {
            follower.isDone || follower.output.text.contains("sent before anyone listened")
        }
        try #require(caughtUp && !follower.isDone, "the follower printed:\(follower.output.text)\(follower.errors.text)")
        // Other processes see its consumer once it has published its counters.
        let counted = try await waitUntil(timeout: .seconds(10)) {
            try await command.statistics(of: "queue://orders")?["consumers"] as? Int == 1
        }
        #expect(counted, "stats never showed the follower's consumer")

        _ = try await command.run(["send", "orders", "hello from another terminal"])
        let printed = await waitUntil(timeout: .seconds(10)) { follower.output.text.contains("hello from another terminal") }
        #expect(printed, "the follower printed:\(follower.output.text)\(follower.errors.text)")
        #expect(!follower.isDone, "receive --follow keeps following")

        let statistics = try await command.statistics(of: "queue://orders")
        #expect(statistics?["enqueued"] as? Int == 2)
        #expect(statistics?["depth"] as? Int == 0)
    }
}
}

/// `CONVEYOR_STORE` picks the engine when `--store` is not given.
extension HeavyTests {
@Suite("conveyor store selection", .timeLimit(.minutes(2)))
struct StoreSelectionTests {
    let temporary = SharedTemporaryDirectory()

    @Test
    func theEnvironmentVariablePicksTheEngineAndTheOptionWins() async throws {
        var command = ConveyorCommand(directory: temporary.path, environment: ["CONVEYOR_STORE": "file"])
        _ = try await command.run(["send", "orders", "kept in a journal"])
        let files = try FileManager.default.contentsOfDirectory(atPath: temporary.path)
        #expect(files.contains { $0.hasPrefix("segment-") && $0.hasSuffix(".journal") }, "\(files)")
        #expect(!files.contains("data.mdb"), "\(files)")

        // --store wins over the variable, which is then not even read.
        command.environment["CONVEYOR_STORE"] = "nosuchstore"
        let fromFile = try await command.run(["receive", "orders", "--count", "1", "--timeout", "5s", "--store", "file"])
        #expect(fromFile.contains("kept in a journal"))

        let refused = try command.start(["stats"])
        defer { refused.killIfRunning() }
        #expect(await waitUntil(timeout: .seconds(30)) { refused.isDone })
        #expect(refused.process.terminationStatus != 0)
        #expect(refused.errors.text.contains("CONVEYOR_STORE is 'nosuchstore'"), "\(refused.errors.text)")
    }
}
}
