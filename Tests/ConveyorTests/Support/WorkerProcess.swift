import Foundation
import Synchronization

/// A child process of the test helper executable, with its standard output and error collected on
/// threads of their own, for tests that run the worker (crash recovery, disk full).
final class WorkerProcess: Sendable {
    let process: Process
    /// Standard output, as the worker writes it.
    let output: StreamCollector
    /// Standard error.
    let errors: StreamCollector
    private let pipes: [Pipe]
    /// The worker's standard input when kept open (it stops when this closes).
    private let input: Pipe?

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - keepingInputOpen: Whether the worker's standard input is a pipe that stays open until
    ///     ``closeInput()`` (or this process ends), rather than empty.
    ///   - environment: Variables to set for the worker, on top of this process's.
    /// - Throws: A description of why it could not start.
    init(_ executable: URL, arguments: [String], keepingInputOpen: Bool = false, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let input = keepingInputOpen ? Pipe() : nil
        process.standardInput = input ?? FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ConveyorTestError("cannot start \(executable.path): \(error)")
        }
        // The child has its copies; close ours so that reading ends when the child dies.
        try? output.fileHandleForWriting.close()
        try? errors.fileHandleForWriting.close()
        try? input?.fileHandleForReading.close()
        self.input = input
        self.process = process
        self.output = StreamCollector(output.fileHandleForReading.fileDescriptor)
        self.errors = StreamCollector(errors.fileHandleForReading.fileDescriptor)
        // The collectors read the pipes' descriptors: keep the pipes as long as the worker object.
        self.pipes = [output, errors]
    }

    /// Whether the process has ended and both streams have been read to their end.
    var isDone: Bool { !process.isRunning && output.isFinished && errors.isFinished }

    /// Closes the worker's standard input (a worker that waits for its end then stops).
    func closeInput() {
        try? input?.fileHandleForWriting.close()
    }

    /// The lines of standard output so far that start with `prefix`.
    func lines(startingWith prefix: String) -> [Substring] {
        output.text.split(separator: "\n").filter { $0.hasPrefix(prefix) }
    }

    /// Kills the worker with SIGKILL if it still runs.
    func killIfRunning() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// An error of the test harness itself, with a readable description.
struct ConveyorTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads a file descriptor to its end on a thread of its own (a blocking read must not hold a
/// thread of Swift's cooperative pool).
final class StreamCollector: Sendable {
    private let state = Mutex<(bytes: [UInt8], finished: Bool)>(([], false))

    init(_ fileDescriptor: Int32) {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                state.withLock { $0.bytes.append(contentsOf: buffer[0..<count]) }
            }
            state.withLock { $0.finished = true }
        }
        thread.start()
    }

    /// Everything read so far, with a leading newline so that every line starts with "\n".
    var text: String { "\n" + state.withLock { String(decoding: $0.bytes, as: UTF8.self) } }
    var isFinished: Bool { state.withLock { $0.finished } }
}
