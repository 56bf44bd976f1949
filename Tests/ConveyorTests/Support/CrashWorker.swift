import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Running the `ConveyorCrashWorker` executable (Sources/ConveyorCrashWorker) from the tests: finding
/// it, and running its crash or topics mode in cycles, each ended by SIGKILL.
enum CrashWorker {
    static let name = "ConveyorCrashWorker"

    /// The worker executable: next to the test bundle (the build directory), else `.build/debug`.
    static func locate() -> URL? { BuiltExecutable.locate(name) }

    /// The worker executable, as ``locate()``; if it is not found, records an issue saying how to
    /// build it and returns `nil`.
    static func locateOrRecordIssue() -> URL? {
        if let worker = locate() { return worker }
        Issue.record("""
            the ConveyorCrashWorker executable was not found next to the test bundle \
            (\(CommandLine.arguments[0])) nor in .build/debug; build it with `swift build` \
            (the test target depends on it, so `swift test` builds it)
            """)
        return nil
    }

    /// The outcome of ``runCycles(_:mode:store:directory:cycles:killDelay:)``.
    struct Cycles {
        /// Every cycle's journal lines, applied in order.
        var journal = Journal()
        /// The kill delay of each cycle run, in milliseconds.
        var delays: [Int] = []
        /// Why the last cycle run cannot be trusted (and no further cycle was run), if so.
        var failure: String?
    }

    /// Runs the worker `cycles` times on `directory`, each run killed `killDelay` milliseconds (at
    /// random) after it reported work, and each starting its message numbers above the highest the
    /// journal named so far.
    /// - Parameter mode: The worker's mode argument (`topics`), or `nil` for the crash mode.
    static func runCycles(
        _ executable: URL, mode: String? = nil, store: StoreKind, directory: String, cycles: Int,
        killDelay: ClosedRange<Int>
    ) async -> Cycles {
        var result = Cycles()
        for cycle in 1...cycles {
            let delay = Int.random(in: killDelay)
            result.delays.append(delay)
            let run = await runAndKill(
                executable, mode: mode, store: store, directory: directory, first: result.journal.highestNamed + 1,
                killAfterMilliseconds: delay)
            for line in run.lines { result.journal.apply(line, cycle: cycle) }
            result.journal.endCycle(cycle)
            if let failure = run.failure {
                result.failure = "cycle \(cycle) (kill delays so far \(result.delays) ms): \(failure)\nstderr: \(run.standardError)"
                break
            }
        }
        return result
    }

    /// One run of the worker.
    struct Run {
        var lines: [String]
        var standardError: String
        /// Why the cycle cannot be trusted (the worker failed, never worked, or was not killed).
        var failure: String?
    }

    /// Starts the worker, waits until it reports work, lets it run `killAfterMilliseconds` more,
    /// kills it with SIGKILL and returns its complete journal.
    /// - Parameter mode: The worker's mode argument (`topics`), or `nil` for the crash mode.
    static func runAndKill(
        _ executable: URL, mode: String? = nil, store: StoreKind, directory: String, first: Int,
        killAfterMilliseconds delay: Int
    ) async -> Run {
        let worker: WorkerProcess
        do {
            let arguments = (mode.map { [$0] } ?? []) + [store.rawValue, directory, String(first)]
            worker = try WorkerProcess(executable, arguments: arguments)
        } catch {
            return Run(lines: [], standardError: "", failure: "\(error)")
        }
        defer { worker.killIfRunning() }
        let process = worker.process
        let journal = worker.output
        let standardError = worker.errors

        var failure: String?
        // Wait until the worker has done some work (it starts in well under a second; allow for a
        // loaded machine).
        let deadline = ContinuousClock.now + .seconds(30)
        while !journal.text.contains("\nSENT ") && !journal.text.contains("\nACKED ") {
            if !process.isRunning || journal.isFinished {
                failure = "the worker ended before doing any work"
                break
            }
            if ContinuousClock.now > deadline {
                failure = "the worker did no work within 30 s"
                break
            }
            try? await Task.sleep(for: .milliseconds(2))  // poll interval, bounded by the deadline above
        }
        if failure == nil {
            try? await Task.sleep(for: .milliseconds(delay))  // deliberate: wait until the random moment of the kill
            if !process.isRunning { failure = "the worker ended by itself before the kill" }
        }
        kill(process.processIdentifier, SIGKILL)
        let exitDeadline = ContinuousClock.now + .seconds(20)
        while process.isRunning || !journal.isFinished || !standardError.isFinished {
            if ContinuousClock.now > exitDeadline {
                return Run(lines: [], standardError: standardError.text, failure: "the worker did not end after SIGKILL")
            }
            try? await Task.sleep(for: .milliseconds(2))  // poll interval, bounded by exitDeadline
        }
        if failure == nil, process.terminationReason != .uncaughtSignal || process.terminationStatus != SIGKILL {
            failure = "the worker ended with \(process.terminationReason) \(process.terminationStatus), not by SIGKILL"
        }
        // Lines are written whole (one write each); keep only complete ones.
        var text = journal.text
        if let lastNewline = text.lastIndex(of: "\n") {
            text = String(text[...lastNewline])
        } else {
            text = ""
        }
        let lines = text.split(separator: "\n").map(String.init)
        if failure == nil, let error = lines.first(where: { $0.hasPrefix("ERROR") }) { failure = error }
        return Run(lines: lines, standardError: standardError.text, failure: failure)
    }
}
