import Foundation
import Testing

extension HeavyTests {
    /// `conveyor bench` end to end, with the real executable and scaled-down workloads: M1 in a
    /// process of its own, W6's open after a killed writer, the JSON lines.
    @Suite("conveyor bench", .timeLimit(.minutes(2)))
    struct BenchCommandTests {
        let temporary = SharedTemporaryDirectory()

        @Test
        func aScaledRunReportsEveryWorkloadAndStoreAsJSONLines() async throws {
            let command = ConveyorCommand(directory: temporary.path)
            let output = try await command.run([
                "bench", "--workload", "W1,M1,W6", "--store", "memory,file", "--scale", "0.002", "--runs", "1", "--format", "json",
            ])
            let results = try output.split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
            let rows = results.map { "\($0["workload"] ?? "?")/\($0["store"] ?? "?")" }
            #expect(rows == ["W1/memory", "W1/file", "M1/memory", "M1/file", "W6/memory", "W6/file"])
            func result(_ workload: String, _ store: String) -> [String: Any] {
                results.first { $0["workload"] as? String == workload && $0["store"] as? String == store } ?? [:]
            }

            // Scaled: 200,000 × 0.002 and 1,000,000 × 0.002.
            #expect(result("W1", "memory")["messages"] as? Int == 400)
            #expect(result("M1", "file")["messages"] as? Int == 2_000)
            // M1 ran in a process of its own and reported that process's memory.
            for store in ["memory", "file"] {
                let memory = try #require(result("M1", store)["rss_anon_mib"] as? Double, "M1 on \(store)")
                #expect(memory > 0)
            }
            // W6 opened the store a killed process left, on the disk store only.
            #expect(result("W6", "memory")["open_after_kill_seconds"] == nil)
            let afterKill = try #require(result("W6", "file")["open_after_kill_seconds"] as? Double)
            #expect(afterKill > 0)
            #expect(result("W6", "file")["open_seconds"] is Double)
        }

        @Test
        func aScaleThatIsNotAboveZeroIsAClearError() async throws {
            let executable = try #require(ConveyorExecutable.locate())
            let bench = try WorkerProcess(executable, arguments: ["bench", "--workload", "W1", "--scale", "0"])
            defer { bench.killIfRunning() }
            #expect(await waitUntil(timeout: .seconds(30)) { bench.isDone })
            #expect(bench.process.terminationStatus != 0)
            #expect(bench.errors.text.contains("--scale must be above zero"))
        }
    }
}
