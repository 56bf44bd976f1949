import Conveyor
import ConveyorLMDB
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Durability: a child process sends persistent and non-persistent messages and is killed with
/// SIGKILL mid-stream; reopening the store finds every persistent message it reported sent, and none
/// of the non-persistent ones.
public struct DurabilityDemo: Demo {
    public let name = "durability"
    public let summary = "A producer process is killed with SIGKILL mid-stream; every persistent message it sent is still there."

    /// The worker name the child is started with: `<launcher> durability-producer <directory>`.
    public static let workerName = "durability-producer"
    /// How many persistent sends the parent waits for before the kill.
    static let killAfter = 25

    public init() {}

    public func run(narrator: Narrator, environment: DemoEnvironment) async throws -> DemoReport {
        guard let launcher = environment.childLauncher else {
            throw DemoError("the durability demo starts a child process, and no executable to start was given")
        }
        return try await TemporaryStore.with(name) { store in
            narrator.explain("""
                A child process opens the store (LMDB, sync mode) and sends, one after another, a persistent \
                message to queue://journal and a non-persistent one to queue://scratch, printing 'SENT n' after \
                each persistent send returned. A persistent send returns only once the message is on disk. After \
                \(Self.killAfter) of them the parent kills the child with SIGKILL: no clean-up, no flush.
                """)
            let process = Process()
            process.executableURL = launcher.executable
            process.arguments = launcher.arguments + [Self.workerName, store.directory.path]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            let lines = LineCollector()
            do {
                try process.run()
            } catch {
                throw DemoError("cannot start the child process \(launcher.executable.path): \(error)")
            }
            try? output.fileHandleForWriting.close()
            lines.startReading(output.fileHandleForReading)
            narrator.event("parent", .info, "started child process \(process.processIdentifier)")
            var shown = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while lines.persistentSent < Self.killAfter {
                for line in lines.lines.dropFirst(shown) {
                    shown += 1
                    if line.hasPrefix("SENT ") {
                        let number = line.dropFirst(5)
                        if let n = Int(number), n <= 3 || n % 5 == 0 {
                            narrator.event("child", .send, "message \(number) → queue://journal (persistent, on disk)")
                        }
                    } else if line.hasPrefix("ERROR") {
                        throw DemoError("the child process failed: \(line)")
                    }
                }
                if !process.isRunning, lines.persistentSent < Self.killAfter {
                    throw DemoError("the child process ended by itself (status \(process.terminationStatus)) after \(lines.persistentSent) sends")
                }
                guard ContinuousClock.now < deadline else {
                    kill(process.processIdentifier, SIGKILL)
                    throw DemoError("the child process sent only \(lines.persistentSent) messages in 20 s")
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // Everything the child wrote is in the pipe; wait briefly for the end of it. (If another
            // process inherited the pipe by accident, the end may never come: go on with what was read.)
            try? await waitUntil("the child's output ended", timeout: .seconds(2)) { lines.isFinished }
            let reported = lines.persistentSent
            let reportedNonPersistent = lines.nonPersistentSent
            narrator.event("parent", .reject, "SIGKILL → child (it had reported \(reported) persistent and \(reportedNonPersistent) non-persistent sends)")

            narrator.section("reopening the store")
            let broker = try store.openBroker()
            defer { broker.close() }
            let connection = try ConnectionFactory(broker: broker).createConnection()
            try connection.start()
            let session = try connection.createSession()
            let journal = try session.createConsumer(for: .q("journal"))
            var numbers: [Int] = []
            while let message = try await journal.receive(timeout: .milliseconds(200)) {
                if let n = try message.property("n", as: Int.self) { numbers.append(n) }
            }
            let scratch = try session.createConsumer(for: .q("scratch"))
            var scratchFound = 0
            while try await scratch.receive(timeout: .milliseconds(100)) != nil { scratchFound += 1 }
            let missing = (1...max(reported, 1)).filter { !numbers.contains($0) }.count - (reported == 0 ? 1 : 0)
            narrator.event("parent", .receive, "queue://journal: \(numbers.count) messages (\(numbers.first ?? 0)…\(numbers.last ?? 0))")
            narrator.event("parent", .receive, "queue://scratch: \(scratchFound) messages")
            narrator.explain("""
                Every message the child reported sent is there (one more may be, if it was stored just before the \
                kill and its line not yet printed). The non-persistent messages lived only in the child's memory.
                """)

            var report = DemoReport()
            report.received = ["parent": numbers.map { "message \($0)" }]
            report["reportedPersistent"] = reported
            report["reportedNonPersistent"] = reportedNonPersistent
            report["foundPersistent"] = numbers.count
            report["missingPersistent"] = missing
            report["foundNonPersistent"] = scratchFound
            report["inOrder"] = numbers == numbers.sorted() ? 1 : 0
            narrator.result("""
                \(reported) persistent sends reported, \(numbers.count) found after the kill, \(missing) missing; \
                non-persistent: \(scratchFound) of \(reportedNonPersistent) survived
                """)
            return report
        }
    }

    /// The child's side: sends to `directory` until killed. Prints `SENT n` after each persistent send
    /// and `SENT-NP n` after each non-persistent one, each line with one write(2).
    /// - Parameter directory: The store directory.
    public static func runWorker(directory: String) async -> Never {
        do {
            let broker = try Broker(store: LMDBStore(directory: directory))
            let connection = try ConnectionFactory(broker: broker).createConnection()
            let session = try connection.createSession()
            let journal = try session.createProducer(for: .q("journal"))
            let scratch = try session.createProducer(for: .q("scratch"))
            var n = 1
            while true {
                _ = try await journal.send(try Message.text("message \(n)").with("n", n))
                writeLine("SENT \(n)")
                _ = try await scratch.send(try Message.text("scratch \(n)").with("n", n), options: .nonPersistent)
                writeLine("SENT-NP \(n)")
                n += 1
                if n > 100_000 { break }
            }
            exit(0)
        } catch {
            writeLine("ERROR \(error)")
            exit(2)
        }
    }

    private static func writeLine(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    exit(3)
                }
                offset += written
            }
        }
    }
}

/// The child's output, split into lines as it arrives.
private final class LineCollector: Sendable {
    private struct State {
        var pending = Data()
        var lines: [String] = []
        var finished = false
    }
    private let state = Mutex(State())

    /// Reads `handle` on a thread of its own until end of file.
    func startReading(_ handle: FileHandle) {
        let descriptor = handle.fileDescriptor
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    self.append(Data(buffer[0..<count]))
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            self.finish()
            withExtendedLifetime(handle) {}
        }
        thread.start()
    }

    func append(_ data: Data) {
        state.withLock { state in
            state.pending.append(data)
            while let newline = state.pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: state.pending[state.pending.startIndex..<newline], as: UTF8.self)
                state.lines.append(line)
                state.pending.removeSubrange(state.pending.startIndex...newline)
            }
        }
    }

    func finish() { state.withLock { $0.finished = true } }

    var isFinished: Bool { state.withLock { $0.finished } }
    var lines: [String] { state.withLock { $0.lines } }
    var persistentSent: Int { state.withLock { $0.lines.filter { $0.hasPrefix("SENT ") }.count } }
    var nonPersistentSent: Int { state.withLock { $0.lines.filter { $0.hasPrefix("SENT-NP ") }.count } }
}
