import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a demo's timeline: who sent what, which consumer got it, what was acknowledged or
/// redelivered, and why. Each event carries the milliseconds since the demo started.
///
/// Colour (ANSI escapes) is used only when asked for; ``standardOutput()`` asks for it when standard
/// output is a terminal and `NO_COLOR` is not set. Safe to use from several tasks at once.
public final class Narrator: Sendable {
    /// The kind of an event, which picks its symbol and colour.
    public enum Role: Sendable {
        /// A message was sent.
        case send
        /// A consumer got a message.
        case receive
        /// A message was acknowledged or a transaction committed.
        case acknowledge
        /// A message will be delivered again: rollback, recover, failure.
        case redeliver
        /// Something was refused or failed.
        case reject
        /// Something about the store or the broker: opened, closed, killed, counted.
        case store
        /// Anything else.
        case info

        var symbol: String {
            switch self {
            case .send: "→"
            case .receive: "←"
            case .acknowledge: "✓"
            case .redeliver: "↻"
            case .reject: "✗"
            case .store: "■"
            case .info: "·"
            }
        }

        var colourCode: String {
            switch self {
            case .send: "36"  // cyan
            case .receive: "32"  // green
            case .acknowledge: "32;2"  // dim green
            case .redeliver: "33"  // yellow
            case .reject: "31"  // red
            case .store: "35"  // magenta
            case .info: "39"
            }
        }
    }

    /// Whether ANSI colour escapes are written.
    public let colour: Bool
    private let sink: @Sendable (String) -> Void
    private let start = Mutex<ContinuousClock.Instant>(ContinuousClock.now)
    private let lines = Mutex<[String]>([])

    /// Creates a narrator.
    /// - Parameters:
    ///   - colour: Whether to write ANSI colour escapes.
    ///   - sink: Called with each line, newline included.
    public init(colour: Bool = false, sink: @escaping @Sendable (String) -> Void) {
        self.colour = colour
        self.sink = sink
    }

    /// A narrator that writes nothing (but still keeps ``transcript``).
    public static func silent() -> Narrator { Narrator { _ in } }

    /// A narrator writing to standard output, in colour when it is a terminal and `NO_COLOR` is unset.
    public static func standardOutput() -> Narrator {
        Narrator(colour: shouldUseColour()) { text in
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// Whether standard output is a terminal and `NO_COLOR` is unset (https://no-color.org).
    public static func shouldUseColour() -> Bool {
        if let value = ProcessInfo.processInfo.environment["NO_COLOR"], !value.isEmpty { return false }
        return isatty(STDOUT_FILENO) == 1
    }

    /// Every line written so far, without colour escapes.
    public var transcript: [String] { lines.withLock { $0 } }

    // MARK: Lines

    /// Starts a demo: its name and summary, and resets the clock.
    public func heading(_ name: String, _ summary: String) {
        start.withLock { $0 = .now }
        emit("", plain: "")
        emit(style("▌ \(name)", "1;4"), plain: "▌ \(name)")
        emit(style("  \(summary)", "1"), plain: "  \(summary)")
    }

    /// A part of a demo.
    public func section(_ text: String) {
        emit(style("  ── \(text)", "1"), plain: "  ── \(text)")
    }

    /// Why something happens: the lesson, dimmed.
    public func explain(_ text: String) {
        for line in wrap(text, width: 92) {
            emit(style("     \(line)", "2"), plain: "     \(line)")
        }
    }

    /// One event of the timeline.
    /// - Parameters:
    ///   - actor: Who did it: a producer, consumer or system.
    ///   - role: What kind of event it was.
    ///   - text: What happened.
    public func event(_ actor: String, _ role: Role, _ text: String) {
        let milliseconds = start.withLock { (ContinuousClock.now - $0) }.wholeMilliseconds
        let time = pad(String(milliseconds), 5, left: true) + " ms"
        let name = pad(actor, 14)
        let plain = "  \(time)  \(name) \(role.symbol) \(text)"
        let coloured = "  " + style(time, "2") + "  " + style(name, "1") + " " + style("\(role.symbol) \(text)", role.colourCode)
        emit(coloured, plain: plain)
    }

    /// The outcome of a demo or part of one.
    public func result(_ text: String) {
        emit(style("  ⇒ \(text)", "1;32"), plain: "  ⇒ \(text)")
    }

    // MARK: Helpers

    private func emit(_ text: String, plain: String) {
        lines.withLock { $0.append(plain) }
        sink((colour ? text : plain) + "\n")
    }

    private func style(_ text: String, _ code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }

    private func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? String(word) : " " + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
