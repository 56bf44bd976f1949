/// Typed application properties (JMS 3.1 §3.5).
extension Message {
    /// The name of the JMS-defined property that holds ``deliveryCount`` on a delivered message.
    static let jmsxDeliveryCount = "JMSXDeliveryCount"

    /// The names of the properties that are set: the application properties and, on a delivered
    /// message, `JMSXDeliveryCount` (so that every name listed here answers ``propertyExists(_:)``,
    /// and every name that exists is listed, as JMS `getPropertyNames` does).
    public var propertyNames: [String] {
        var names = Array(properties.keys)
        if deliveryCount > 0, properties[Message.jmsxDeliveryCount] == nil { names.append(Message.jmsxDeliveryCount) }
        return names
    }

    /// Whether a property is set. `JMSXDeliveryCount` is always present on a delivered message.
    /// - Parameter name: The property name.
    public func propertyExists(_ name: String) -> Bool { property(name) != nil }

    /// A property's value, or `nil` when it is not set (selectors see that as NULL).
    ///
    /// `JMSXDeliveryCount` is answered from ``deliveryCount`` once the message has been delivered.
    /// - Parameter name: The property name (case-sensitive).
    public func property(_ name: String) -> MessageValue? {
        if let value = properties[name] { return value }
        if name == Message.jmsxDeliveryCount, deliveryCount > 0 { return .int32(Int32(clamping: deliveryCount)) }
        return nil
    }

    /// A property read as `T` with the JMS conversion rules, or `nil` when it is not set.
    ///
    /// A missing property is `nil` whatever `T` is. JMS answers differently per type
    /// (`getStringProperty` gives `null`, `getBooleanProperty` gives `false`, the numeric getters
    /// throw `NumberFormatException`); in Swift the optional says "not set" for every type, so
    /// write `?? false` where the JMS default is wanted. A property that is set but does not
    /// convert (`"abc"` read as `Int32`, a `Double` read as `Int64`) throws instead.
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
    ///     The `JMSX` properties have the types JMS gives them: `JMSXGroupID`, `JMSXUserID` and
    ///     `JMSXAppID` are strings; `JMSXGroupSeq` is an `int` (any integer in `Int32` range, stored
    ///     as ``MessageValue/int32(_:)``).
    /// - Throws: ``ConveyorError/Code/messageFormat`` for an invalid name, a byte-array value, or a
    ///   `JMSX` property of the wrong type.
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
        properties[name] = try PropertyName.checkedJMSXValue(value, forName: name)
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
    /// JMS-defined `JMSX` properties an application may set.
    static let settableJMSX: Set<String> = ["JMSXGroupID", "JMSXGroupSeq", "JMSXUserID", "JMSXAppID"]

    /// `value` as the JMS-defined property `name` holds it (JMS 3.1 §3.5.9): the identifiers are
    /// strings, the group sequence an `int`. Other names keep their value as is.
    /// - Throws: ``ConveyorError/Code/messageFormat`` when the value has another type (a group ID
    ///   set as a number would otherwise silently form no group).
    static func checkedJMSXValue(_ value: MessageValue, forName name: String) throws(ConveyorError) -> MessageValue {
        guard name.hasPrefix("JMSX") else { return value }
        if name == "JMSXGroupSeq" {
            let sequence: Int32? =
                switch value {
                case .int8(let v): Int32(v)
                case .int16(let v): Int32(v)
                case .int32(let v): v
                case .int64(let v): Int32(exactly: v)
                default: nil
                }
            guard let sequence else {
                throw .messageFormat("'JMSXGroupSeq' is an int property; a \(value.typeName) value (\(value)) cannot be set")
            }
            return .int32(sequence)
        }
        guard case .string = value else {
            throw .messageFormat("'\(name)' is a String property; a \(value.typeName) value (\(value)) cannot be set")
        }
        return value
    }

    /// Checks `name` with the selector's own identifier rules (``SelectorLexer``, Java's
    /// `isJavaIdentifierStart`/`isJavaIdentifierPart` on each Unicode scalar, ASCII-only keyword
    /// folding), so that every property can be named in a selector and every identifier a selector
    /// accepts can be set: `prix€` is valid, `x²` is not, and `ın` (dotless i) is not the keyword IN.
    static func validate(_ name: String) throws(ConveyorError) {
        guard let first = name.unicodeScalars.first else {
            throw .messageFormat("a property name cannot be empty")
        }
        guard SelectorLexer.isIdentifierStart(first),
              name.unicodeScalars.dropFirst().allSatisfy(SelectorLexer.isIdentifierPart)
        else {
            throw .messageFormat(
                "'\(name)' is not a valid property name: use a Java identifier (a letter, '_' or '$' "
                    + "followed by letters, digits, '_' or '$')")
        }
        if SelectorKeyword(word: name) != nil {
            throw .messageFormat("'\(name)' is a selector keyword and cannot be a property name")
        }
        if name.hasPrefix("JMS"), !name.hasPrefix("JMS_"), !settableJMSX.contains(name) {
            throw .messageFormat(
                "'\(name)' is reserved: names starting with JMS belong to the JMS specification (use JMS_ for vendor properties)")
        }
    }
}
