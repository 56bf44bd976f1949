import ArgumentParser
import ConveyorDemos
import Foundation

/// `conveyor demo-child WORKER ARGS…` (hidden): the child processes some demos start and kill.
struct DemoChildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-child",
        abstract: "Runs a demo's child process (used by 'conveyor demo').",
        shouldDisplay: false
    )

    @Argument var worker: String
    @Argument var arguments: [String] = []

    /// How a demo starts this command in a child process: this executable, `demo-child`.
    static func launcher() -> ChildLauncher? {
        ChildLauncher(executable: ConveyorCommand.executable, arguments: ["demo-child"])
    }

    func run() async throws {
        switch worker {
        case DurabilityDemo.workerName:
            guard arguments.count == 1 else { throw CommandLineError("usage: conveyor demo-child \(worker) DIRECTORY") }
            await DurabilityDemo.runWorker(directory: arguments[0])
        default:
            throw CommandLineError("unknown demo worker '\(worker)'")
        }
    }
}
