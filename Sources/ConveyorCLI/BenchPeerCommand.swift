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
    static func launcher() -> PeerLauncher {
        PeerLauncher(executable: ConveyorCommand.executable, arguments: ["bench-peer"])
    }

    func run() async throws {
        try await CrossProcessWorkload.runPeer(directory: directory, count: count)
    }
}

/// `conveyor bench-fill STORE DIRECTORY COUNT` (hidden): the process W6 kills once it has queued its
/// backlog, to time opening a store after a crash.
struct BenchFillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-fill",
        abstract: "Queues a backlog and waits to be killed (used by 'conveyor bench' for W6).",
        shouldDisplay: false
    )

    @Argument var store: String
    @Argument var directory: String
    @Argument var count: Int

    /// How W6 starts this command in a child process: this executable, `bench-fill`.
    static func launcher() -> PeerLauncher {
        PeerLauncher(executable: ConveyorCommand.executable, arguments: ["bench-fill"])
    }

    func run() async throws {
        try await BacklogRecoveryWorkload.fillAndWait(store: store, directory: directory, count: count)
    }
}
