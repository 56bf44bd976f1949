import ArgumentParser
import ConveyorWorkloads
import Foundation

/// `conveyor bench-peer DIRECTORY COUNT` (hidden): the consumer process of the X1 workload.
struct BenchPeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-peer",
        abstract: "Runs the consumer process of the X1 benchmark (used by 'conveyor bench').",
        shouldDisplay: false
    )

    @Argument var directory: String
    @Argument var count: Int

    /// How X1 starts this command in a child process: this executable, `bench-peer`.
    static func launcher() -> CrossProcessWorkload.PeerLauncher {
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return CrossProcessWorkload.PeerLauncher(executable: executable, arguments: ["bench-peer"])
    }

    func run() async throws {
        try await CrossProcessWorkload.runPeer(directory: directory, count: count)
    }
}
