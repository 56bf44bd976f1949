import Foundation

/// A typed value held in a message property, a map body or a stream body.
///
/// Reading a value as another type follows the JMS conversion table (JMS 3.1 §3.5.4): a value can
/// be read as a wider type of the same family (`int8` as `Int32`), as a `String`, and a `String` can
/// be parsed as any primitive. Anything else is a ``ConveyorError/Code/messageFormat`` error.
///
/// Text converts as in Java: a string reads as an integer as `Integer.parseInt` does (an optional
/// sign and ASCII digits, nothing else), as a floating-point number as `Double.valueOf` does
/// (`" 1.5 "`, `"1.5f"`, `"NaN"`, `"0x1p3"`), and a `float` or `double` reads as a string in the form
/// of Java's `toString` (`1.0E20`, `0.001`).
///
/// Java's `char` has no Swift counterpart and is not offered. `bytes` is allowed in map and stream
/// bodies only; properties reject it, as in JMS.
public enum MessageValue: Sendable, Hashable, CustomStringConvertible {
    /// A boolean.
    case bool(Bool)
    /// A JMS `byte`.
    case int8(Int8)
    /// A JMS `short`.
    case int16(Int16)
    /// A JMS `int`.
    case int32(Int32)
    /// A JMS `long`.
    case int64(Int64)
    /// A JMS `float`.
    case float(Float)
    /// A JMS `double`.
    case double(Double)
    /// A string.
    case string(String)
    /// A byte array (map and stream bodies only).
    case bytes(Data)

    /// The JMS name of the value's type, used in error messages.
    public var typeName: String {
        switch self {
        case .bool: "boolean"
        case .int8: "byte"
        case .int16: "short"
        case .int32: "int"
        case .int64: "long"
        case .float: "float"
        case .double: "double"
        case .string: "String"
        case .bytes: "byte[]"
        }
    }

    /// The value as text, the way JMS's `getStringProperty` would show it: Java's `toString` of the
    /// value (`true`, `-7`, `1.5`, `1.0E20`, `4.9E-324`, `NaN`, `-Infinity`).
    public var description: String {
        switch self {
        case .bool(let v): String(v)
        case .int8(let v): String(v)
        case .int16(let v): String(v)
        case .int32(let v): String(v)
        case .int64(let v): String(v)
        case .float(let v): JavaNumberText.format(v)
        case .double(let v): JavaNumberText.format(v)
        case .string(let v): v
        case .bytes(let v): "<\(v.count) bytes>"
        }
    }

    /// Reads the value as `Bool`: from a boolean or a string (`"true"`, any case, is true; any other
    /// string is false, as Java's `Boolean.valueOf`).
    /// - Throws: ``ConveyorError/Code/messageFormat`` for any other type.
    public func asBool() throws(ConveyorError) -> Bool {
        switch self {
        case .bool(let v): return v
        case .string(let s): return s.lowercased() == "true"
        default: throw conversionError(to: "boolean")
        }
    }

    /// Reads the value as `Int8`: from a byte or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asInt8() throws(ConveyorError) -> Int8 {
        switch self {
        case .int8(let v): return v
        case .string(let s): return try parse(s, as: "byte") { JavaNumberText.parseInteger($0) }
        default: throw conversionError(to: "byte")
        }
    }

    /// Reads the value as `Int16`: from a byte, a short, or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asInt16() throws(ConveyorError) -> Int16 {
        switch self {
        case .int8(let v): return Int16(v)
        case .int16(let v): return v
        case .string(let s): return try parse(s, as: "short") { JavaNumberText.parseInteger($0) }
        default: throw conversionError(to: "short")
        }
    }

    /// Reads the value as `Int32`: from a byte, short, int, or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asInt32() throws(ConveyorError) -> Int32 {
        switch self {
        case .int8(let v): return Int32(v)
        case .int16(let v): return Int32(v)
        case .int32(let v): return v
        case .string(let s): return try parse(s, as: "int") { JavaNumberText.parseInteger($0) }
        default: throw conversionError(to: "int")
        }
    }

    /// Reads the value as `Int64`: from any integer type or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asInt64() throws(ConveyorError) -> Int64 {
        switch self {
        case .int8(let v): return Int64(v)
        case .int16(let v): return Int64(v)
        case .int32(let v): return Int64(v)
        case .int64(let v): return v
        case .string(let s): return try parse(s, as: "long") { JavaNumberText.parseInteger($0) }
        default: throw conversionError(to: "long")
        }
    }

    /// Reads the value as `Float`: from a float or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asFloat() throws(ConveyorError) -> Float {
        switch self {
        case .float(let v): return v
        case .string(let s): return try parse(s, as: "float") { JavaNumberText.parseFloatingPoint($0) }
        default: throw conversionError(to: "float")
        }
    }

    /// Reads the value as `Double`: from a float, a double, or a string holding one.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for other types or an unparsable string.
    public func asDouble() throws(ConveyorError) -> Double {
        switch self {
        case .float(let v): return Double(v)
        case .double(let v): return v
        case .string(let s): return try parse(s, as: "double") { JavaNumberText.parseFloatingPoint($0) }
        default: throw conversionError(to: "double")
        }
    }

    /// Reads the value as `String`: every type but `bytes` converts.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for a byte array.
    public func asString() throws(ConveyorError) -> String {
        if case .bytes = self { throw conversionError(to: "String") }
        return description
    }

    /// Reads the value as bytes: only a byte array converts.
    /// - Throws: ``ConveyorError/Code/messageFormat`` for any other type.
    public func asBytes() throws(ConveyorError) -> Data {
        guard case .bytes(let data) = self else { throw conversionError(to: "byte[]") }
        return data
    }

    private func conversionError(to target: String) -> ConveyorError {
        .messageFormat("a \(typeName) value (\(description)) cannot be read as \(target)")
    }

    private func parse<T>(_ text: String, as target: String, _ make: (String) -> T?) throws(ConveyorError) -> T {
        guard let value = make(text) else {
            throw .messageFormat("the string '\(text)' cannot be read as \(target)")
        }
        return value
    }

    /// The value's numeric form for selector arithmetic and comparisons, if it is a number.
    var numeric: SelectorNumber? {
        switch self {
        case .int8(let v): .integer(Int64(v))
        case .int16(let v): .integer(Int64(v))
        case .int32(let v): .integer(Int64(v))
        case .int64(let v): .integer(v)
        case .float(let v): .real(Double(v))
        case .double(let v): .real(v)
        default: nil
        }
    }
}

/// A number as selectors see it: exact (integer) or approximate (floating point).
enum SelectorNumber: Sendable, Equatable {
    case integer(Int64)
    case real(Double)

    var doubleValue: Double {
        switch self {
        case .integer(let v): Double(v)
        case .real(let v): v
        }
    }
}

/// Types that convert to and from a ``MessageValue``, used by the typed property accessors.
public protocol MessageValueConvertible: Sendable {
    /// The value wrapped as a ``MessageValue``.
    var messageValue: MessageValue { get }
    /// Reads a value of this type from `value` using the JMS conversion rules.
    /// - Throws: ``ConveyorError/Code/messageFormat`` when the conversion is not allowed.
    static func converting(_ value: MessageValue) throws(ConveyorError) -> Self
}

extension Bool: MessageValueConvertible {
    /// `.bool(self)`.
    public var messageValue: MessageValue { .bool(self) }
    /// See ``MessageValue/asBool()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Bool { try value.asBool() }
}

extension Int8: MessageValueConvertible {
    /// `.int8(self)`.
    public var messageValue: MessageValue { .int8(self) }
    /// See ``MessageValue/asInt8()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Int8 { try value.asInt8() }
}

extension Int16: MessageValueConvertible {
    /// `.int16(self)`.
    public var messageValue: MessageValue { .int16(self) }
    /// See ``MessageValue/asInt16()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Int16 { try value.asInt16() }
}

extension Int32: MessageValueConvertible {
    /// `.int32(self)`.
    public var messageValue: MessageValue { .int32(self) }
    /// See ``MessageValue/asInt32()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Int32 { try value.asInt32() }
}

extension Int64: MessageValueConvertible {
    /// `.int64(self)`.
    public var messageValue: MessageValue { .int64(self) }
    /// See ``MessageValue/asInt64()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Int64 { try value.asInt64() }
}

extension Int: MessageValueConvertible {
    /// `.int64(self)`: Swift's `Int` is stored as a JMS `long`.
    public var messageValue: MessageValue { .int64(Int64(self)) }
    /// Reads as ``MessageValue/asInt64()``, then narrows to `Int`.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Int { Int(try value.asInt64()) }
}

extension Float: MessageValueConvertible {
    /// `.float(self)`.
    public var messageValue: MessageValue { .float(self) }
    /// See ``MessageValue/asFloat()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Float { try value.asFloat() }
}

extension Double: MessageValueConvertible {
    /// `.double(self)`.
    public var messageValue: MessageValue { .double(self) }
    /// See ``MessageValue/asDouble()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Double { try value.asDouble() }
}

extension String: MessageValueConvertible {
    /// `.string(self)`.
    public var messageValue: MessageValue { .string(self) }
    /// See ``MessageValue/asString()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> String { try value.asString() }
}

extension Data: MessageValueConvertible {
    /// `.bytes(self)`.
    public var messageValue: MessageValue { .bytes(self) }
    /// See ``MessageValue/asBytes()``.
    public static func converting(_ value: MessageValue) throws(ConveyorError) -> Data { try value.asBytes() }
}
