import Foundation
import Synchronization

/// Writes a line to standard output at once (the parent waits for it; `print` may buffer).
func writeLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Reads lines of a child process's output on a thread of its own (a blocking read must not hold a thread
/// of Swift's cooperative pool).
final class LineReader: Sendable {
    private let state = Mutex<(lines: [String], ended: Bool)>(([], false))

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    state.withLock { $0.lines.append(line) }
                }
            }
            state.withLock { $0.ended = true }
        }
        thread.start()
    }

    /// The next line, or `nil` once the output ended or the deadline passed.
    func next(before deadline: ContinuousClock.Instant = .now + .seconds(60)) async -> String? {
        while ContinuousClock.now < deadline {
            let (line, ended) = state.withLock { state -> (String?, Bool) in
                state.lines.isEmpty ? (nil, state.ended) : (state.lines.removeFirst(), false)
            }
            if let line { return line }
            if ended { return nil }
            try? await Task.sleep(for: .milliseconds(1))  // polls the reader thread's lines
        }
        return nil
    }
}
