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
    public var body: MessageBody {
        get { storage.body }
        set { uniqueStorage().body = newValue }
    }
    /// JMSCorrelationID: links a reply to its request, or any application-defined grouping.
    public var correlationID: String? {
        get { storage.extras?.correlationID }
        set { updateExtras { $0.correlationID = newValue } }
    }
    /// JMSReplyTo: where the receiver should send its reply.
    public var replyTo: Destination? {
        get { storage.extras?.replyTo }
        set { updateExtras { $0.replyTo = newValue } }
    }
    /// JMSType: an application-defined message type name.
    public var type: String? {
        get { storage.extras?.type }
        set { updateExtras { $0.type = newValue } }
    }

    /// JMSMessageID, set when the message is sent.
    public internal(set) var messageID: MessageID? {
        get { storage.messageID }
        set { uniqueStorage().messageID = newValue }
    }
    /// JMSTimestamp: when the message was handed to the broker, in milliseconds since 1970; 0 before send.
    public internal(set) var timestamp: Int64 {
        get { storage.timestamp }
        set { uniqueStorage().timestamp = newValue }
    }
    /// JMSDestination: where the message was sent.
    public internal(set) var destination: Destination? {
        get { storage.destination }
        set { uniqueStorage().destination = newValue }
    }
    /// JMSDeliveryMode, set from the producer on send.
    public internal(set) var deliveryMode: DeliveryMode {
        get { storage.deliveryMode }
        set { uniqueStorage().deliveryMode = newValue }
    }
    /// JMSPriority: 0 (lowest) to 9 (highest); 4 is the default.
    public internal(set) var priority: Int {
        get { storage.priority }
        set { uniqueStorage().priority = newValue }
    }
    /// JMSExpiration: when the message expires, in milliseconds since 1970; 0 means never.
    public internal(set) var expiration: Int64 {
        get { storage.expiration }
        set { uniqueStorage().expiration = newValue }
    }
    /// JMSDeliveryTime: the earliest time the message may be delivered, in milliseconds since 1970.
    public internal(set) var deliveryTime: Int64 {
        get { storage.deliveryTime }
        set { uniqueStorage().deliveryTime = newValue }
    }
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
        get { storage.extras?.properties ?? [:] }
        set { updateExtras { $0.properties = newValue } }
    }

    /// The body and the headers set on send, shared copy-on-write between copies: copying a message
    /// (which the broker does between producer, store, queue and consumer) copies one reference.
    /// The fields that change on every delivery stay inline, so delivering a message never copies
    /// its storage.
    private var storage: MessageStorage

    /// Whether any application property is set (no dictionary is touched when none is).
    var hasProperties: Bool { storage.extras.map { !$0.value.properties.isEmpty } ?? false }

    /// The storage, copied first if another message shares it.
    private mutating func uniqueStorage() -> MessageStorage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    private mutating func updateExtras(_ change: (inout Extras.Value) -> Void) {
        var value = storage.extras?.value ?? Extras.Value()
        change(&value)
        uniqueStorage().extras = value.isEmpty ? nil : Extras(value)
    }

    /// The session-side handle that ``acknowledge()`` calls; set on delivery to a consumer.
    var acknowledger: (any MessageAcknowledging)?

    /// Creates a message with a body and no properties.
    /// - Parameter body: The payload.
    public init(body: MessageBody = .empty) {
        self.storage = MessageStorage(body: body)
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

/// The shared part of a ``Message``: its body and the headers set on send.
///
/// Copy-on-write: a message changes it only while it holds the only reference (see
/// `Message.uniqueStorage()`), which is what makes sharing it between threads safe.
private final class MessageStorage: @unchecked Sendable {
    var body: MessageBody
    /// The headers and properties most messages do without, kept out of line so that copying the
    /// storage of a plain message stays cheap. `nil` while all of them are empty.
    var extras: Extras?
    var messageID: MessageID?
    var timestamp: Int64 = 0
    var destination: Destination?
    var deliveryMode: DeliveryMode = .persistent
    var priority: Int = 4
    var expiration: Int64 = 0
    var deliveryTime: Int64 = 0

    init(body: MessageBody) {
        self.body = body
    }

    /// An unshared copy, for a message about to change.
    func copy() -> MessageStorage {
        let copy = MessageStorage(body: body)
        copy.extras = extras
        copy.messageID = messageID
        copy.timestamp = timestamp
        copy.destination = destination
        copy.deliveryMode = deliveryMode
        copy.priority = priority
        copy.expiration = expiration
        copy.deliveryTime = deliveryTime
        return copy
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
