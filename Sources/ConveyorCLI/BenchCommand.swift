import ArgumentParser
import Conveyor
import Foundation
import ConveyorWorkloads

/// `conveyor bench`: runs the standard workloads of `WORKLOADS.md` on one or more stores and prints
/// a table, or one JSON object per workload and store.
struct BenchCommand: AsyncParsableCommand {
    /// How results are printed.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// A table with a bar per row, for people.
        case table
        /// One JSON object per line, keys as in `WORKLOADS.md`, for scripts.
        case json
    }

    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the standard workloads and report their rates.",
        discussion: """
            Workloads: \(WorkloadID.allCases.map { "\($0) \($0.name)\($0.isImplemented ? "" : " (not implemented yet)")" }.joined(separator: ", ")).
            Each workload runs --runs times on a fresh store; the median and the min–max are reported. \
            Progress goes to standard error, results to standard output.
            """
    )

    @Option(help: "Comma-separated workload IDs, or 'all' for every implemented one.")
    var workload: String = WorkloadID.implemented.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated store names, or 'all'. Stores: \(WorkloadStore.all.map(\.name).joined(separator: ", ")).")
    var store: String = WorkloadStore.all.map(\.name).joined(separator: ",")

    /// The durability modes `--durability` accepts.
    enum Durability: String, ExpressibleByArgument, CaseIterable {
        case sync
        case groupCommit = "group-commit"
        case osBuffered = "os-buffered"

        var storeDurability: StoreDurability {
            switch self {
            case .sync: .sync
            case .groupCommit: .groupCommit
            case .osBuffered: .osBuffered
            }
        }
    }

    @Option(help: "Durability mode of the disk stores (results are labelled lmdb/osBuffered and so on when not sync). The workloads' targets are set for sync; the other modes show what a sync costs.")
    var durability: Durability = .sync

    @Option(help: "Output format.")
    var format: Format = .table

    @Option(help: "Runs per workload and store.")
    var runs: Int = 3

    @Option(help: "Multiplies every workload's message count (0.01 for a quick run of the same shape); results of a scaled run are not comparable with the standard figures.")
    var scale: Double = 1

    @Option(help: "Where to create each run's temporary store directory (removed afterwards); the system's temporary directory by default. Put it on the disk you want to measure.")
    var directory: String?

    func validate() throws {
        _ = try selectedWorkloads()
        _ = try selectedStores()
        guard runs >= 1 else { throw CommandLineError("--runs must be at least 1, not \(runs)") }
        guard scale > 0, scale.isFinite else { throw CommandLineError("--scale must be above zero, not \(scale)") }
    }

    func run() async throws {
        let workloads = try selectedWorkloads()
        let stores = try selectedStores()
        CrossProcessWorkload.peer = BenchPeerCommand.launcher()
        BacklogRecoveryWorkload.writer = BenchFillCommand.launcher()
        var results: [WorkloadResult] = []
        for id in workloads {
            for store in stores {
                if id == .x1, store.makeSharedStore == nil {
                    // Only LMDB in its default mode is shared between processes; X1 has nothing to
                    // measure on the others.
                    Console.progress("\(id) skipped on the \(store.name) store: only the lmdb store in sync mode is shared between processes\n")
                    continue
                }
                let result: WorkloadResult
                do {
                    if id == .m1, workloads.count * stores.count > 1 {
                        result = try runInChildProcess(.m1, on: store)
                    } else {
                        result = try await WorkloadRunner(store: store, runs: runs, directory: directory.map { URL(fileURLWithPath: $0) }).run(id, scaledBy: scale) { progress in
                            Console.progress(BenchOutput.progress(progress))
                        }
                    }
                } catch {
                    Console.progress("failed\n")
                    throw CommandLineError("\(id) (\(id.name)) on the \(store.name) store failed: \(error)")
                }
                if format == .json { Console.write(BenchOutput.jsonLine(result) + "\n") }
                results.append(result)
            }
        }
        if format == .table { Console.write(BenchOutput.table(results)) }
    }

    /// Runs one workload on one store in a new process of this executable (`bench --format json`)
    /// and reads its result. M1 measures the process's anonymous resident memory, which the
    /// workloads run before it would inflate (the allocator keeps what they freed), so it gets a
    /// process of its own whenever it is not the only thing to run.
    private func runInChildProcess(_ id: WorkloadID, on store: WorkloadStore) throws -> WorkloadResult {
        let executable = ConveyorCommand.executable
        let storeName = String(store.name.prefix { $0 != "/" })
        var arguments = ["bench", "--workload", id.rawValue, "--store", storeName, "--durability", durability.rawValue,
                         "--runs", String(runs), "--scale", String(scale), "--format", "json"]
        if let directory { arguments += ["--directory", directory] }
        let child = Process()
        child.executableURL = executable
        child.arguments = arguments
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let result = try? JSONDecoder().decode(WorkloadResult.self, from: Data(line.utf8))
        else {
            throw CommandLineError("the \(id) process (\(arguments.joined(separator: " "))) failed with status \(child.terminationStatus)")
        }
        return result
    }

    /// The workloads named by `--workload`, in the order given, without repeats.
    private func selectedWorkloads() throws -> [WorkloadID] {
        let implemented = WorkloadID.implemented.map(\.rawValue).joined(separator: ", ")
        var selected: [WorkloadID] = []
        for name in try Self.names(in: workload, option: "--workload") {
            if name.lowercased() == "all" {
                selected += WorkloadID.implemented
                continue
            }
            guard let id = WorkloadID(parsing: name) else {
                throw CommandLineError("unknown workload '\(name)'; use one of \(implemented), or 'all'")
            }
            guard id.isImplemented else {
                throw CommandLineError("workload \(id) (\(id.name)) is not implemented yet; use one of \(implemented)")
            }
            selected.append(id)
        }
        return selected.uniqued(by: \.self)
    }

    /// The stores named by `--store`, in the order given, without repeats.
    private func selectedStores() throws -> [WorkloadStore] {
        let available = WorkloadStore.all.map(\.name).joined(separator: ", ")
        var selected: [WorkloadStore] = []
        for name in try Self.names(in: store, option: "--store") {
            if name.lowercased() == "all" {
                selected += WorkloadStore.all
                continue
            }
            guard let store = WorkloadStore.named(name) else {
                throw CommandLineError("unknown store '\(name)'; use one of \(available), or 'all'")
            }
            selected.append(store)
        }
        return selected.uniqued(by: \.name).map { $0.with(durability: durability.storeDurability) }
    }

    /// Splits a comma-separated option value into trimmed, non-empty names.
    private static func names(in list: String, option: String) throws -> [String] {
        let names = list.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw CommandLineError("\(option) needs at least one name") }
        return names
    }
}

extension Array {
    /// The elements in order, keeping only the first of those with equal keys.
    fileprivate func uniqued<Key: Hashable>(by key: (Element) -> Key) -> [Element] {
        var seen = Set<Key>()
        return filter { seen.insert(key($0)).inserted }
    }
}
