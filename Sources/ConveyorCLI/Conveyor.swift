import ArgumentParser
import Foundation

/// `conveyor`: the command-line tool of the Conveyor messaging SDK. Each subcommand lives in its
/// own file and is listed here.
@main
struct ConveyorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "Tools for Conveyor, the embedded JMS-style message broker.",
        subcommands: [
            DemoCommand.self, SendCommand.self, ReceiveCommand.self, BrowseCommand.self, StatsCommand.self,
            PurgeCommand.self, SubscriptionsCommand.self, UnsubscribeCommand.self, BenchCommand.self,
            DemoChildCommand.self, BenchPeerCommand.self, BenchFillCommand.self,
        ]
    )
}

extension ConveyorCommand {
    /// This program's executable, which the demos and benchmarks start again as child processes.
    static var executable: URL {
        Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }
}
