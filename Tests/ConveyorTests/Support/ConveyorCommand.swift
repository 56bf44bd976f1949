import Foundation
import Testing

/// The `conveyor` executable run on one store directory, as a user runs it from terminals: each
/// command is a process of its own.
struct ConveyorCommand {
    /// The store directory every command gets with `--directory`.
    let directory: String
    /// Environment variables every command gets.
    var environment: [String: String] = [:]

    /// Starts a command and returns at once (for `receive --follow` and other commands that run
    /// until stopped).
    func start(_ arguments: [String]) throws -> WorkerProcess {
        let executable = try #require(ConveyorExecutable.locate(), "the conveyor executable was not found; `swift build` builds it")
        return try WorkerProcess(executable, arguments: arguments + ["--directory", directory], environment: environment)
    }

    /// Runs a command to its end, expects it to succeed, and returns its standard output.
    func run(_ arguments: [String]) async throws -> String {
        let command = try start(arguments)
        defer { command.killIfRunning() }
        let ended = await waitUntil(timeout: .seconds(60)) { command.isDone }
        #expect(ended, "conveyor \(arguments.joined(separator: " ")) did not end")
        #expect(command.process.terminationStatus == 0, "conveyor \(arguments.joined(separator: " ")):\(command.errors.text)")
        return command.output.text
    }

    /// The `stats --format json` object of the destination `name`, or `nil` if it is not listed.
    func statistics(of name: String) async throws -> [String: Any]? {
        let output = try await run(["stats", "--format", "json"])
        for line in output.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let object, object["name"] as? String == name { return object }
        }
        return nil
    }
}
