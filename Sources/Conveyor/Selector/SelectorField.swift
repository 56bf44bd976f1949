/// What a selector identifier refers to: one of the six header fields a selector may name
/// (JMS 3.1 §3.8.1.1), or an application property.
///
/// Resolved once, when the selector is parsed, so evaluation never compares identifier names.
enum SelectorField: Sendable, Equatable {
    /// `JMSDeliveryMode`: the string `'PERSISTENT'` or `'NON_PERSISTENT'`.
    case deliveryMode
    /// `JMSPriority`: an integer, 0 to 9.
    case priority
    /// `JMSMessageID`: the string `'ID:…'`, or NULL before the message is sent.
    case messageID
    /// `JMSTimestamp`: an integer, milliseconds since 1970.
    case timestamp
    /// `JMSCorrelationID`: a string, or NULL.
    case correlationID
    /// `JMSType`: a string, or NULL.
    case type
    /// Any other identifier: the property of that name (case-sensitive), NULL when not set.
    case property(String)

    /// The field an identifier names. Header names are matched exactly (identifiers are
    /// case-sensitive); any other name, `jmspriority` included, is a property.
    init(identifier: String) {
        switch identifier {
        case "JMSDeliveryMode": self = .deliveryMode
        case "JMSPriority": self = .priority
        case "JMSMessageID": self = .messageID
        case "JMSTimestamp": self = .timestamp
        case "JMSCorrelationID": self = .correlationID
        case "JMSType": self = .type
        default: self = .property(identifier)
        }
    }

    /// The type the field is known to have before any message is seen; `.unknown` for properties.
    var staticType: SelectorType {
        switch self {
        case .deliveryMode, .messageID, .correlationID, .type: .string
        case .priority, .timestamp: .number
        case .property: .unknown
        }
    }

    /// The field's value in `message`.
    /// - Parameter message: The message being evaluated.
    /// - Returns: The value, or `.null` when the header or property is not set.
    func value(in message: Message) -> SelectorValue {
        switch self {
        case .deliveryMode: .string(message.deliveryMode.description)
        case .priority: .integer(Int64(message.priority))
        case .messageID: message.messageID.map { .string($0.description) } ?? .null
        case .timestamp: .integer(message.timestamp)
        case .correlationID: message.correlationID.map { .string($0) } ?? .null
        case .type: message.type.map { .string($0) } ?? .null
        case .property(let name): SelectorValue(message.property(name))
        }
    }

    /// Whether the field is NULL in `message`, without building its value.
    /// - Parameter message: The message being evaluated.
    /// - Returns: `true` when the header or property is not set.
    func isNull(in message: Message) -> Bool {
        switch self {
        case .deliveryMode, .priority, .timestamp: false
        case .messageID: message.messageID == nil
        case .correlationID: message.correlationID == nil
        case .type: message.type == nil
        case .property(let name): message.property(name) == nil
        }
    }
}
