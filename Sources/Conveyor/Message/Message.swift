import Foundation

/// Whether a message must survive a broker restart.
public enum DeliveryMode: Int, Sendable, Hashable, CustomStringConvertible {
    /// Not stored: lost if the broker stops. Cheaper; fine for data that is soon stale.
    case nonPersistent = 1
    /// Written to the store before `send` returns (the JMS default).
    case persistent = 2

    /// `PERSISTENT` or `NON_PERSISTENT`, the JMS names (also what selectors compare against).
    public var description: String { self == .persistent ? "PERSISTENT" : "NON_PERSISTENT" }
}

/// A message identifier, unique within a store: `ID:<origin>:<sequence>`.
///
/// Kept as an origin string shared by all messages of a broker plus an integer, and formatted only
/// when asked, so assigning an identifier costs no allocation on the send path.
public struct MessageID: Hashable, Sendable, CustomStringConvertible {
    /// The broker instance that assigned the identifier.
    public let origin: String
    /// The broker-wide sequence number of the message.
    public let sequence: UInt64

    /// `ID:<origin>:<sequence>`, the JMSMessageID form.
    public var description: String { "ID:\(origin):\(sequence)" }
}

/// A JMS message: headers, typed properties and a body.
///
/// `Message` is a value: a producer's copy, the stored copy and each consumer's copy are independent,
/// so the JMS rules about read-only received messages (`MessageNotWriteableException`) are moot in
/// Swift: change your copy as you like and send it again. The body is shared copy-on-write between
/// copies. Header fields the provider sets on send (``messageID``, ``timestamp``, ``destination``,
/// ``deliveryMode``, ``priority``, ``expiration``, ``deliveryTime``) and on delivery (``redelivered``,
/// ``deliveryCount``) are read-only here and are set by ``MessageProducer/send(_:)``.
public struct Message: Sendable {
    /// The payload.
    public var body: MessageBody
    /// JMSCorrelationID: links a reply to its request, or any application-defined grouping.
    public var correlationID: String? {
        get { extras?.correlationID }
        set { updateExtras { $0.correlationID = newValue } }
    }
    /// JMSReplyTo: where the receiver should send its reply.
    public var replyTo: Destination? {
        get { extras?.replyTo }
        set { updateExtras { $0.replyTo = newValue } }
    }
    /// JMSType: an application-defined message type name.
    public var type: String? {
        get { extras?.type }
        set { updateExtras { $0.type = newValue } }
    }

    /// JMSMessageID, set when the message is sent.
    public internal(set) var messageID: MessageID?
    /// JMSTimestamp: when the message was handed to the broker, in milliseconds since 1970; 0 before send.
    public internal(set) var timestamp: Int64 = 0
    /// JMSDestination: where the message was sent.
    public internal(set) var destination: Destination?
    /// JMSDeliveryMode, set from the producer on send.
    public internal(set) var deliveryMode: DeliveryMode = .persistent
    /// JMSPriority: 0 (lowest) to 9 (highest); 4 is the default.
    public internal(set) var priority: Int = 4
    /// JMSExpiration: when the message expires, in milliseconds since 1970; 0 means never.
    public internal(set) var expiration: Int64 = 0
    /// JMSDeliveryTime: the earliest time the message may be delivered, in milliseconds since 1970.
    public internal(set) var deliveryTime: Int64 = 0
    /// JMSRedelivered: the message may have been delivered before without being acknowledged.
    public internal(set) var redelivered: Bool = false
    /// JMSXDeliveryCount: how many times the message has been delivered, this time included.
    ///
    /// Also readable as the property `JMSXDeliveryCount` (see ``property(_:)``), and usable in
    /// selectors under that name. Settable within the package so that a store can show a selector
    /// the recorded count of a waiting message.
    public package(set) var deliveryCount: Int = 0

    /// Application properties; read them with ``property(_:)`` or ``property(_:as:)``.
    public internal(set) var properties: [String: MessageValue] {
        get { extras?.properties ?? [:] }
        set { updateExtras { $0.properties = newValue } }
    }

    /// The headers and properties most messages do without, kept out of line so that a plain
    /// message is small and cheap to copy on the hot path. `nil` while all of them are empty.
    private var extras: Extras?

    /// Whether any application property is set (no dictionary is touched when none is).
    var hasProperties: Bool { extras.map { !$0.value.properties.isEmpty } ?? false }

    private func extrasValue() -> Extras.Value { extras?.value ?? Extras.Value() }

    private mutating func updateExtras(_ change: (inout Extras.Value) -> Void) {
        var value = extrasValue()
        change(&value)
        extras = value.isEmpty ? nil : Extras(value)
    }

    /// The session-side handle that ``acknowledge()`` calls; set on delivery to a consumer.
    var acknowledger: (any MessageAcknowledging)?

    /// Creates a message with a body and no properties.
    /// - Parameter body: The payload.
    public init(body: MessageBody = .empty) {
        self.body = body
    }

    /// A text message.
    public static func text(_ text: String) -> Message { Message(body: .text(text)) }
    /// A bytes message. The bytes are shared, not copied, when the message is copied or sent.
    public static func bytes(_ bytes: Data) -> Message { Message(body: .bytes(bytes)) }
    /// A bytes message from a byte array.
    public static func bytes(_ bytes: [UInt8]) -> Message { Message(body: .bytes(Data(bytes))) }
    /// A map message.
    public static func map(_ values: [String: MessageValue]) -> Message { Message(body: .map(values)) }
    /// A stream message.
    public static func stream(_ values: [MessageValue]) -> Message { Message(body: .stream(values)) }
    /// A message with no body.
    public static var empty: Message { Message(body: .empty) }

    /// An object message holding `value` encoded as JSON.
    /// - Parameter value: Any `Encodable` value.
    /// - Throws: ``ConveyorError/Code/messageFormat`` if the value cannot be encoded.
    public static func object(_ value: some Encodable) throws(ConveyorError) -> Message {
        do {
            return Message(body: .object(try JSONEncoder().encode(value)))
        } catch {
            throw ConveyorError(.messageFormat, "the object could not be encoded as JSON", underlying: error)
        }
    }

    /// The body as text, or `nil` if this is not a text message.
    public var text: String? {
        if case .text(let text) = body { return text }
        return nil
    }

    /// The body as bytes, or `nil` if this is not a bytes message.
    public var bytes: Data? {
        if case .bytes(let bytes) = body { return bytes }
        return nil
    }

    /// The body as named values, or `nil` if this is not a map message.
    ///
    /// Read each value with the JMS conversion rules through ``MessageValue``'s accessors, as in
    /// `try message.map?["count"]?.asInt64()`.
    public var map: [String: MessageValue]? {
        if case .map(let values) = body { return values }
        return nil
    }

    /// The body as a sequence of values, or `nil` if this is not a stream message.
    ///
    /// Read each value with the JMS conversion rules through ``MessageValue``'s accessors.
    public var stream: [MessageValue]? {
        if case .stream(let values) = body { return values }
        return nil
    }

    /// Decodes an object message's body as `type`.
    /// - Parameter type: The `Decodable` type the caller expects.
    /// - Returns: The decoded value.
    /// - Throws: ``ConveyorError/Code/messageFormat`` if this is not an object message or the JSON
    ///   does not decode as `type`.
    public func decodeObject<T: Decodable>(_ type: T.Type) throws(ConveyorError) -> T {
        guard case .object(let data) = body else {
            throw .messageFormat("the message is a \(body.kind), not an ObjectMessage; cannot decode \(T.self)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw ConveyorError(.messageFormat, "the ObjectMessage body does not decode as \(T.self)", underlying: error)
        }
    }

    /// Acknowledges, in a client-acknowledge session, this message and every other message the
    /// session has consumed so far (JMS semantics: the acknowledgement is per session, not per message).
    ///
    /// In other acknowledge modes this does nothing, as in JMS. A message that was never delivered
    /// (one you built yourself) has nothing to acknowledge.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the session is closed.
    public func acknowledge() async throws(ConveyorError) {
        try await acknowledger?.acknowledgeFromMessage()
    }
}

/// The out-of-line part of a ``Message``: immutable, replaced as a whole when a value changes.
private final class Extras: Sendable {
    struct Value: Sendable {
        var correlationID: String?
        var replyTo: Destination?
        var type: String?
        var properties: [String: MessageValue] = [:]

        var isEmpty: Bool { correlationID == nil && replyTo == nil && type == nil && properties.isEmpty }
    }

    let value: Value

    init(_ value: Value) {
        self.value = value
    }

    var correlationID: String? { value.correlationID }
    var replyTo: Destination? { value.replyTo }
    var type: String? { value.type }
    var properties: [String: MessageValue] { value.properties }
}

/// The session behind ``Message/acknowledge()``.
protocol MessageAcknowledging: AnyObject, Sendable {
    func acknowledgeFromMessage() async throws(ConveyorError)
}
