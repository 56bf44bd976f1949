import ArgumentParser
import ConveyorDemos
import Foundation

/// `conveyor demo`: runs the teaching demos, each on a temporary store, narrating what happens.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch the messaging models at work: one narrated demo per model.",
        discussion: """
            Without NAME, runs every demo in sequence (well under a minute). Each runs on a fresh temporary LMDB \
            store, deleted afterwards, and prints a timeline: who sent what, which consumer got it, what was \
            acknowledged, what was redelivered, and why. Colour is used when standard output is a terminal and \
            NO_COLOR is not set.

            Demos:
            \(DemoCatalogue.all.map { "  \($0.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \($0.summary)" }.joined(separator: "\n"))
            """
    )

    @Argument(help: "The demo to run (see --list); all of them if omitted.")
    var name: String?

    @Flag(help: "List the demos, one line each, and exit.")
    var list = false

    func validate() throws {
        if let name, DemoCatalogue.named(name) == nil {
            throw CommandLineError("unknown demo '\(name)'; the demos are: \(DemoCatalogue.all.map(\.name).joined(separator: ", "))")
        }
    }

    func run() async throws {
        if list {
            let width = DemoCatalogue.all.map(\.name.count).max() ?? 0
            for demo in DemoCatalogue.all {
                Console.write(demo.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + demo.summary + "\n")
            }
            return
        }
        let demos = name.flatMap(DemoCatalogue.named).map { [$0] } ?? DemoCatalogue.all
        let narrator = Narrator.standardOutput()
        let environment = DemoEnvironment(childLauncher: DemoChildCommand.launcher())
        let started = ContinuousClock.now
        for demo in demos {
            narrator.heading(demo.name, demo.summary)
            do {
                _ = try await demo.run(narrator: narrator, environment: environment)
            } catch {
                throw CommandLineError("the \(demo.name) demo failed: \(error)")
            }
        }
        if demos.count > 1 {
            let seconds = Double((ContinuousClock.now - started).components.seconds)
                + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
            Console.write("\n\(demos.count) demos in \(String(format: "%.1f", seconds)) s. Run one with 'conveyor demo NAME'; list them with 'conveyor demo --list'.\n")
        }
    }
}
