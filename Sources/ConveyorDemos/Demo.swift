import Conveyor
import Foundation

/// One teaching scenario of `conveyor demo`: it runs on a fresh temporary store, narrates a timeline
/// of what happens and why, and returns the facts it narrated so that tests can check them.
public protocol Demo: Sendable {
    /// The name typed after `conveyor demo`, such as `point-to-point`.
    var name: String { get }
    /// One line saying what the demo shows.
    var summary: String { get }
    /// Runs the demo.
    /// - Parameters:
    ///   - narrator: Where the timeline is written.
    ///   - environment: What the demo may need from its host, such as a way to start a child process.
    /// - Returns: The facts the demo narrated: counts, and who received what.
    func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport
}

/// What a demo may need from the program running it.
public struct DemoEnvironment: Sendable {
    /// How to start a child process that runs a demo's worker: the executable and the arguments that
    /// come before the worker's own (for the CLI: `conveyor` and `["demo-child"]`). `nil` when no
    /// child can be started; demos that need one fail with a clear message then.
    public var childLauncher: ChildLauncher?

    /// Creates an environment.
    /// - Parameter childLauncher: How to start child processes, if possible.
    public init(childLauncher: ChildLauncher? = nil) {
        self.childLauncher = childLauncher
    }
}

/// An executable that runs demo workers: `<executable> <arguments…> <worker> <worker arguments…>`.
public struct ChildLauncher: Sendable {
    /// The executable to start.
    public var executable: URL
    /// The arguments that select the worker mode (for the CLI: `["demo-child"]`).
    public var arguments: [String]

    /// Creates a launcher.
    public init(executable: URL, arguments: [String]) {
        self.executable = executable
        self.arguments = arguments
    }
}

/// The facts a demo narrated: named counts and, per consumer, what it received in order.
public struct DemoReport: Sendable, CustomStringConvertible {
    /// Named counts, such as `"accepted": 10`.
    public var counts: [String: Int] = [:]
    /// For each consumer (or downstream system), the bodies it received, in order.
    public var received: [String: [String]] = [:]

    /// An empty report.
    public init() {}

    /// The count named `key`, or 0.
    public subscript(_ key: String) -> Int {
        get { counts[key] ?? 0 }
        set { counts[key] = newValue }
    }

    /// Every body received by any consumer.
    public var allReceived: [String] { received.values.flatMap { $0 } }

    /// The counts and receptions, sorted, one per line.
    public var description: String {
        let countLines = counts.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
        let receivedLines = received.sorted { $0.key < $1.key }.map { "\($0.key) received \($0.value)" }
        return (countLines + receivedLines).joined(separator: "\n")
    }
}

/// A demo could not run or did not behave as it should.
public struct DemoError: Error, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Every demo, in the order `conveyor demo` runs them.
public enum DemoCatalogue {
    /// The demos, from the simplest model to durability.
    public static let all: [any Demo] = [
        PointToPointDemo(),
        PublishSubscribeDemo(),
        DurableSubscriptionDemo(),
        AsyncProcessingDemo(),
        PeakShavingDemo(),
        DecouplingDemo(),
        AcknowledgeDemo(),
        TransactionDemo(),
        MessageGroupDemo(),
        DurabilityDemo(),
    ]

    /// The demo called `name` (case-insensitive), if any.
    public static func named(_ name: String) -> (any Demo)? {
        all.first { $0.name.lowercased() == name.lowercased() }
    }
}
