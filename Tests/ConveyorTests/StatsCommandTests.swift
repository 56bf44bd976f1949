import Foundation
import Testing

/// `conveyor stats` counts what earlier commands did: each command is a process of its own that
/// opens the LMDB store shared, and ends before the next starts.
extension HeavyTests {
@Suite("conveyor stats", .timeLimit(.minutes(2)))
struct StatsCommandTests {
    let temporary = SharedTemporaryDirectory()

    /// Runs `conveyor` with `arguments` on the test's store and returns its standard output.
    func conveyor(_ arguments: [String]) async throws -> String {
        let executable = try #require(ConveyorExecutable.locate(), "the conveyor executable was not found; `swift build` builds it")
        let command = try WorkerProcess(executable, arguments: arguments + ["--directory", temporary.path])
        defer { command.killIfRunning() }
        let ended = await waitUntil(timeout: .seconds(60)) { command.isDone }
        #expect(ended, "conveyor \(arguments.joined(separator: " ")) did not end")
        #expect(command.process.terminationStatus == 0, "conveyor \(arguments.joined(separator: " ")):\(command.errors.text)")
        return command.output.text
    }

    /// The `stats --format json` object of `name`.
    func statistics(of name: String) async throws -> [String: Any] {
        let output = try await conveyor(["stats", "--format", "json"])
        for line in output.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let object, object["name"] as? String == name { return object }
        }
        Issue.record("stats does not list \(name):\(output)")
        return [:]
    }

    @Test
    func statsCountsWhatEarlierCommandsSentAndReceived() async throws {
        _ = try await conveyor(["send", "orders", "first"])
        _ = try await conveyor(["send", "orders", "second"])
        let sent = try await statistics(of: "queue://orders")
        #expect(sent["enqueued"] as? Int == 2)
        #expect(sent["depth"] as? Int == 2)
        #expect(sent["dequeued"] as? Int == 0)

        _ = try await conveyor(["receive", "orders", "--count", "1", "--timeout", "5s"])
        let received = try await statistics(of: "queue://orders")
        #expect(received["enqueued"] as? Int == 2)
        #expect(received["dequeued"] as? Int == 1)
        #expect(received["depth"] as? Int == 1)
        #expect(received["consumers"] as? Int == 0)
        #expect(received["inFlight"] as? Int == 0)
    }
}
}
