import Conveyor
import Foundation

/// How received and browsed messages are printed: readable blocks for people, or one JSON object per
/// line for scripts.
enum MessageFormatter {
    /// The output formats.
    enum Format: String, CaseIterable {
        case text
        case json
    }

    /// The message in `format`, newline included.
    static func render(_ message: Message, format: Format, index: Int) -> String {
        switch format {
        case .text: text(message, index: index)
        case .json: json(message) + "\n"
        }
    }

    // MARK: Text

    static func text(_ message: Message, index: Int) -> String {
        var lines: [String] = []
        let destination = message.destination.map(String.init(describing:)) ?? "?"
        lines.append("── #\(index)  \(destination)  \(message.messageID.map(String.init(describing:)) ?? "(no ID)")")
        var header = [
            "sent \(time(message.timestamp))",
            "priority \(message.priority)",
            message.deliveryMode == .persistent ? "persistent" : "non-persistent",
            "delivery #\(max(message.deliveryCount, 1))\(message.redelivered ? " (redelivered)" : "")",
        ]
        if message.expiration > 0 { header.append("expires \(time(message.expiration))") }
        if message.deliveryTime > message.timestamp { header.append("deliverable from \(time(message.deliveryTime))") }
        lines.append("   " + header.joined(separator: " · "))
        var extras: [String] = []
        if let correlationID = message.correlationID { extras.append("correlation ID \(correlationID)") }
        if let replyTo = message.replyTo { extras.append("reply to \(replyTo)") }
        if let type = message.type { extras.append("type \(type)") }
        if !extras.isEmpty { lines.append("   " + extras.joined(separator: " · ")) }
        let properties = message.properties.sorted { $0.key < $1.key }
        if !properties.isEmpty {
            lines.append("   properties:")
            for (name, value) in properties {
                lines.append("     \(name) = \(quoted(value)) (\(value.typeName))")
            }
        }
        lines.append("   body: \(message.body.kind), \(message.body.byteCount) bytes")
        for line in bodyLines(message.body) { lines.append("     " + line) }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ value: MessageValue) -> String {
        if case .string(let text) = value { return "'\(text)'" }
        return value.description
    }

    private static func bodyLines(_ body: MessageBody) -> [String] {
        switch body {
        case .empty: return ["(no body)"]
        case .text(let text): return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        case .bytes(let data):
            if let text = String(data: data, encoding: .utf8), !text.contains("\u{0}") {
                return ["(UTF-8) " + text]
            }
            return ["(base64) " + data.base64EncodedString()]
        case .object(let data): return [String(decoding: data, as: UTF8.self)]
        case .map(let values):
            return values.sorted { $0.key < $1.key }.map { "\($0.key) = \(quoted($0.value)) (\($0.value.typeName))" }
        case .stream(let values):
            return values.enumerated().map { "[\($0.offset)] \(quoted($0.element)) (\($0.element.typeName))" }
        }
    }

    private static func time(_ milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = .current
        return formatter.string(from: date)
    }

    // MARK: JSON

    /// One JSON object on one line.
    static func json(_ message: Message) -> String {
        var fields: [(String, String)] = [
            ("id", message.messageID.map { JSONText.string($0.description) } ?? "null"),
            ("destination", message.destination.map { JSONText.string($0.description) } ?? "null"),
            ("timestamp", String(message.timestamp)),
            ("priority", String(message.priority)),
            ("persistent", String(message.deliveryMode == .persistent)),
            ("redelivered", String(message.redelivered)),
            ("deliveryCount", String(message.deliveryCount)),
            ("expiration", String(message.expiration)),
            ("deliveryTime", String(message.deliveryTime)),
        ]
        if let correlationID = message.correlationID { fields.append(("correlationID", JSONText.string(correlationID))) }
        if let replyTo = message.replyTo { fields.append(("replyTo", JSONText.string(replyTo.description))) }
        if let type = message.type { fields.append(("type", JSONText.string(type))) }
        let properties = message.properties.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\(value($0.value))" }
        fields.append(("properties", "{" + properties.joined(separator: ",") + "}"))
        fields.append(("bodyType", JSONText.string(message.body.kind)))
        fields.append(("body", body(message.body)))
        return "{" + fields.map { "\(JSONText.string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func body(_ body: MessageBody) -> String {
        switch body {
        case .empty: "null"
        case .text(let text): JSONText.string(text)
        case .bytes(let data): JSONText.string(data.base64EncodedString())
        case .object(let data): String(decoding: data, as: UTF8.self)
        case .map(let values):
            "{" + values.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\(value($0.value))" }.joined(separator: ",") + "}"
        case .stream(let values): "[" + values.map(value).joined(separator: ",") + "]"
        }
    }

    private static func value(_ value: MessageValue) -> String {
        switch value {
        case .bool(let v): String(v)
        case .int8(let v): String(v)
        case .int16(let v): String(v)
        case .int32(let v): String(v)
        case .int64(let v): String(v)
        case .float(let v): v.isFinite ? String(v) : JSONText.string(String(v))
        case .double(let v): v.isFinite ? String(v) : JSONText.string(String(v))
        case .string(let v): JSONText.string(v)
        case .bytes(let v): JSONText.string(v.base64EncodedString())
        }
    }
}
