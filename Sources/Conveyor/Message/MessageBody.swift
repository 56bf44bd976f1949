import Foundation

/// The payload of a message: the JMS message types as cases of one enum.
public enum MessageBody: Sendable, Equatable {
    /// No body (a JMS `Message`): headers and properties only.
    case empty
    /// A `TextMessage`.
    case text(String)
    /// A `BytesMessage`: opaque bytes, shared copy-on-write between the copies of a message.
    case bytes(Data)
    /// A `MapMessage`: named typed values.
    case map([String: MessageValue])
    /// A `StreamMessage`: a sequence of typed values.
    case stream([MessageValue])
    /// An `ObjectMessage`: a `Codable` value, stored as JSON. Decoded only to a type the caller names,
    /// never by looking up a type from the message (no arbitrary deserialisation).
    case object(Data)

    /// The JMS name of the body's message type, used in error messages.
    public var kind: String {
        switch self {
        case .empty: "Message"
        case .text: "TextMessage"
        case .bytes: "BytesMessage"
        case .map: "MapMessage"
        case .stream: "StreamMessage"
        case .object: "ObjectMessage"
        }
    }

    /// Checks what the enum cannot: a map entry's name must not be empty (JMS `MapMessage` rejects
    /// an empty name).
    /// - Throws: ``ConveyorError/Code/messageFormat`` naming the problem.
    func validate() throws(ConveyorError) {
        if case .map(let values) = self, values[""] != nil {
            throw .messageFormat("a MapMessage entry has an empty name; give every entry a non-empty name")
        }
    }

    /// An estimate of the body's size in bytes, used for limits and statistics.
    public var byteCount: Int {
        switch self {
        case .empty: 0
        case .text(let s): s.utf8.count
        case .bytes(let d), .object(let d): d.count
        case .map(let m): m.reduce(0) { $0 + $1.key.utf8.count + $1.value.byteCount }
        case .stream(let s): s.reduce(0) { $0 + $1.byteCount }
        }
    }
}

extension MessageValue {
    var byteCount: Int {
        switch self {
        case .bool, .int8: 1
        case .int16: 2
        case .int32, .float: 4
        case .int64, .double: 8
        case .string(let s): s.utf8.count
        case .bytes(let d): d.count
        }
    }
}
