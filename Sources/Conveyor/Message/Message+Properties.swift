/// Typed application properties (JMS 3.1 §3.5).
extension Message {
    /// The names of the application properties that are set.
    public var propertyNames: [String] { Array(properties.keys) }

    /// Whether a property is set. `JMSXDeliveryCount` is always present on a delivered message.
    /// - Parameter name: The property name.
    public func propertyExists(_ name: String) -> Bool { property(name) != nil }

    /// A property's value, or `nil` when it is not set (selectors see that as NULL).
    ///
    /// `JMSXDeliveryCount` is answered from ``deliveryCount`` once the message has been delivered.
    /// - Parameter name: The property name (case-sensitive).
    public func property(_ name: String) -> MessageValue? {
        if let value = properties[name] { return value }
        if name == "JMSXDeliveryCount", deliveryCount > 0 { return .int32(Int32(clamping: deliveryCount)) }
        return nil
    }

    /// A property read as `T` with the JMS conversion rules, or `nil` when it is not set.
    /// - Parameters:
    ///   - name: The property name.
    ///   - type: The type to read it as (`Bool`, `Int8` … `Int64`, `Int`, `Float`, `Double`, `String`).
    /// - Throws: ``ConveyorError/Code/messageFormat`` when the stored type does not convert to `T`.
    public func property<T: MessageValueConvertible>(_ name: String, as type: T.Type) throws(ConveyorError) -> T? {
        guard let value = property(name) else { return nil }
        return try T.converting(value)
    }

    /// Sets an application property.
    /// - Parameters:
    ///   - value: A boolean, integer, floating-point or string value.
    ///   - name: A Java identifier that is not a selector keyword and does not start with `JMS`
    ///     (except the `JMSX` group and user properties, such as `JMSXGroupID`, and `JMS_` vendor ones).
    /// - Throws: ``ConveyorError/Code/messageFormat`` for an invalid name or a byte-array value.
    public mutating func setProperty(_ value: some MessageValueConvertible, forName name: String) throws(ConveyorError) {
        try setProperty(value: value.messageValue, forName: name)
    }

    /// Sets an application property from a ``MessageValue``.
    /// - Parameters:
    ///   - value: Any value except `.bytes`.
    ///   - name: See ``setProperty(_:forName:)``.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for an invalid name or a byte-array value.
    public mutating func setProperty(value: MessageValue, forName name: String) throws(ConveyorError) {
        try PropertyName.validate(name)
        if case .bytes = value {
            throw .messageFormat("property '\(name)': byte arrays are not allowed as property values")
        }
        properties[name] = value
    }

    /// Removes one property.
    /// - Parameter name: The property name.
    public mutating func removeProperty(_ name: String) { properties[name] = nil }

    /// Removes every application property (JMS `clearProperties`).
    public mutating func clearProperties() { properties = [:] }

    /// A copy of this message with a property set; handy when building messages inline.
    /// - Parameters:
    ///   - name: See ``setProperty(_:forName:)``.
    ///   - value: The value.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for an invalid name.
    public func with(_ name: String, _ value: some MessageValueConvertible) throws(ConveyorError) -> Message {
        var copy = self
        try copy.setProperty(value, forName: name)
        return copy
    }
}

/// The rules for property names: selector identifiers that are not reserved.
enum PropertyName {
    static let reservedWords: Set<String> = [
        "NULL", "TRUE", "FALSE", "NOT", "AND", "OR", "BETWEEN", "LIKE", "IN", "IS", "ESCAPE",
    ]
    /// JMS-defined `JMSX` properties an application may set.
    static let settableJMSX: Set<String> = ["JMSXGroupID", "JMSXGroupSeq", "JMSXUserID", "JMSXAppID"]

    static func isIdentifierStart(_ c: Character) -> Bool { c.isLetter || c == "_" || c == "$" }
    static func isIdentifierPart(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "$" }

    static func validate(_ name: String) throws(ConveyorError) {
        guard let first = name.first else {
            throw .messageFormat("a property name cannot be empty")
        }
        guard isIdentifierStart(first), name.dropFirst().allSatisfy(isIdentifierPart) else {
            throw .messageFormat(
                "'\(name)' is not a valid property name: use a letter, '_' or '$' followed by letters, digits, '_' or '$'")
        }
        if reservedWords.contains(name.uppercased()) {
            throw .messageFormat("'\(name)' is a selector keyword and cannot be a property name")
        }
        if name.hasPrefix("JMS"), !name.hasPrefix("JMS_"), !settableJMSX.contains(name) {
            throw .messageFormat(
                "'\(name)' is reserved: names starting with JMS belong to the JMS specification (use JMS_ for vendor properties)")
        }
    }
}
