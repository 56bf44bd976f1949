import Conveyor
import Foundation

/// The parsing behind the `conveyor` command's arguments: durations, destinations and message
/// properties. It lives in this library (not in the executable) so that tests can reach it.
public enum CommandLineParsing {
    /// An argument that could not be parsed; the message says what to type instead.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        /// What was wrong.
        public var message: String
        public var description: String { message }
        init(_ message: String) { self.message = message }
    }

    // MARK: Durations

    /// Parses a duration: a number followed by a unit, `ms`, `s`, `m` or `h` (`500ms`, `30s`, `1.5s`,
    /// `5m`, `1h`). Zero is allowed; negative durations and missing units are not.
    /// - Parameters:
    ///   - text: The argument.
    ///   - option: The option's name for the error message, such as `--ttl`.
    public static func duration(_ text: String, option: String = "duration") throws(Failure) -> Duration {
        let trimmed = text.trimmingSpaces()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let hint = "write a number and a unit: 500ms, 30s, 5m or 1h"
        guard !trimmed.isEmpty else { throw Failure("\(option) is empty; \(hint)") }
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        guard !digits.isEmpty, let value = Double(digits), value.isFinite else {
            throw Failure("'\(text)' is not a valid \(option): \(hint)")
        }
        guard !unit.isEmpty else { throw Failure("'\(text)' has no unit for \(option): \(hint)") }
        guard let scale = units.first(where: { $0.0 == unit })?.1 else {
            throw Failure("'\(text)' has an unknown unit '\(unit)' for \(option): \(hint)")
        }
        let milliseconds = (value * scale * 1000).rounded()
        guard milliseconds < 1e15 else { throw Failure("'\(text)' is too long for \(option)") }
        return .milliseconds(Int64(milliseconds))
    }

    /// `1.5s`, `250ms`, `5m`: a short human form of a duration.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(Double(milliseconds) / 1000)s"
    }

    // MARK: Destinations

    /// Parses `queue://name`, `topic://name` or a bare name (a queue).
    public static func destination(_ text: String) throws(Failure) -> Destination {
        if let range = text.range(of: "://") {
            let scheme = text[..<range.lowerBound].lowercased()
            guard scheme == "queue" || scheme == "topic" else {
                throw Failure("unknown destination scheme '\(text[..<range.lowerBound])://' in '\(text)': use queue://NAME or topic://NAME (a bare name is a queue)")
            }
        }
        do {
            return try Destination(parsing: text)
        } catch {
            throw Failure("invalid destination '\(text)': \(error.message)")
        }
    }

    /// Parses a destination that must be a queue (for browse and purge).
    public static func queue(_ text: String, command: String) throws(Failure) -> Queue {
        switch try destination(text) {
        case .queue(let queue): return queue
        case .topic(let topic):
            throw Failure("\(command) works on queues; '\(topic)' is a topic (its subscriptions are listed by 'conveyor subscriptions')")
        }
    }

    // MARK: Properties

    /// Parses a property assignment `name=value`. The value's type is inferred: `true`/`false` is a
    /// boolean, an integer is a long, a decimal number a double, anything else a string. Force a type
    /// with `name:type=value`, the type being `string`, `bool`, `int`, `long`, `double`, `float`,
    /// `short` or `byte`.
    /// - Returns: The name and the value.
    public static func property(_ text: String) throws(Failure) -> (name: String, value: MessageValue) {
        guard let equals = text.firstIndex(of: "=") else {
            throw Failure("property '\(text)' has no '=': write name=value, or name:type=value (type: string, bool, int, long, double)")
        }
        var name = String(text[..<equals]).trimmingSpaces()
        let raw = String(text[text.index(after: equals)...])
        var type: String?
        if let colon = name.firstIndex(of: ":") {
            type = name[name.index(after: colon)...].lowercased()
            name = String(name[..<colon])
        }
        guard !name.isEmpty else { throw Failure("property '\(text)' has an empty name") }
        guard name.first.map({ $0.isLetter || $0 == "_" || $0 == "$" }) == true,
              name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }) else {
            throw Failure("property name '\(name)' is not a valid identifier (letters, digits, _ and $, not starting with a digit)")
        }
        func fail(_ typeName: String) -> Failure {
            Failure("property '\(name)': '\(raw)' is not a valid \(typeName)")
        }
        switch type {
        case nil:
            if raw == "true" || raw == "false" { return (name, .bool(raw == "true")) }
            if let long = Int64(raw) { return (name, .int64(long)) }
            if raw.contains("."), let double = Double(raw), double.isFinite { return (name, .double(double)) }
            return (name, .string(raw))
        case "string": return (name, .string(raw))
        case "bool", "boolean":
            guard raw == "true" || raw == "false" else { throw fail("boolean (true or false)") }
            return (name, .bool(raw == "true"))
        case "long", "int64": guard let v = Int64(raw) else { throw fail("long") }; return (name, .int64(v))
        case "int", "int32": guard let v = Int32(raw) else { throw fail("int") }; return (name, .int32(v))
        case "short", "int16": guard let v = Int16(raw) else { throw fail("short") }; return (name, .int16(v))
        case "byte", "int8": guard let v = Int8(raw) else { throw fail("byte") }; return (name, .int8(v))
        case "double": guard let v = Double(raw) else { throw fail("double") }; return (name, .double(v))
        case "float": guard let v = Float(raw) else { throw fail("float") }; return (name, .float(v))
        case let other?:
            throw Failure("property '\(name)': unknown type '\(other)'; use string, bool, int, long, double, float, short or byte")
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
