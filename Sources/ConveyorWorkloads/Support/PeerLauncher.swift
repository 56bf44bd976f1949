import Foundation

/// How a workload starts a process of its own program: an executable and the arguments that come
/// before the workload's own (the `conveyor` executable and a hidden subcommand, for example).
public struct PeerLauncher: Sendable {
    /// The executable.
    public var executable: URL
    /// Its first arguments.
    public var arguments: [String]

    /// Creates a launcher.
    /// - Parameters:
    ///   - executable: The executable.
    ///   - arguments: Its first arguments.
    public init(executable: URL, arguments: [String]) {
        self.executable = executable
        self.arguments = arguments
    }
}
