import Foundation
import Testing

@testable import Conveyor

/// Numbers as text in the JMS conversions (JMS 3.1 §3.5.4), exactly as Java has them: a string read
/// as a number is Java's `parseInt`/`valueOf`, a floating-point number read as a string is Java's
/// `toString` (JDK 19 and later). The expected values were checked against a JDK.
@Suite("Java number text in JMS conversions")
struct JavaConversionTests {}

// MARK: - Helpers

extension JavaConversionTests {
    /// Reads `.string(text)` with `read`, expecting `expected`, or a `messageFormat` error that quotes
    /// the string and names `target` when `expected` is nil.
    static func expectRead<T>(
        _ text: String, as target: String, _ expected: T?, sameAs same: (T, T) -> Bool,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ read: (MessageValue) throws -> T
    ) async {
        if let expected {
            do {
                let value = try read(.string(text))
                #expect(same(value, expected), "read \(value)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("'\(text)' as \(target) threw \(error)", sourceLocation: sourceLocation)
            }
        } else {
            let error = await expectError(.messageFormat, sourceLocation: sourceLocation) { try read(.string(text)) }
            #expect(
                error?.message.contains("the string '\(text)' cannot be read as \(target)") == true,
                "the error quotes the string and names the type: \(error?.message ?? "")",
                sourceLocation: sourceLocation)
        }
    }

    /// Whether two floating-point numbers are the same value: NaN matches NaN, `-0.0` does not
    /// match `0.0`.
    static func same<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> Bool {
        a.isNaN ? b.isNaN : (a == b && a.sign == b.sign)
    }

    /// ``same(_:_:)`` for optional numbers: both `nil`, or the same value.
    static func same<T: BinaryFloatingPoint>(_ a: T?, _ b: T?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return same(a, b)
    }
}

// MARK: - String to integer

extension JavaConversionTests {
    /// A string read as each integer type; `nil` where Java throws `NumberFormatException`.
    struct IntegerParse: Sendable, CustomTestStringConvertible {
        let text: String
        let byte: Int8?
        let short: Int16?
        let int: Int32?
        let long: Int64?

        init(_ text: String, _ byte: Int8?, _ short: Int16?, _ int: Int32?, _ long: Int64?) {
            (self.text, self.byte, self.short, self.int, self.long) = (text, byte, short, int, long)
        }

        /// The same result for every type.
        init(_ text: String, all value: Int8?) {
            self.init(text, value, value.map(Int16.init), value.map(Int32.init), value.map(Int64.init))
        }

        var testDescription: String { text.debugDescription }
    }

    static let integerParses: [IntegerParse] = [
        IntegerParse("12", all: 12),
        IntegerParse("+12", all: 12),
        IntegerParse("-12", all: -12),
        IntegerParse("-0", all: 0),
        IntegerParse("007", all: 7),
        IntegerParse(" 12", all: nil),
        IntegerParse("12 ", all: nil),
        IntegerParse("\t12", all: nil),
        IntegerParse("12\n", all: nil),
        IntegerParse("1_000", all: nil),
        IntegerParse("", all: nil),
        IntegerParse("+", all: nil),
        IntegerParse("-", all: nil),
        IntegerParse("+-1", all: nil),
        IntegerParse("--1", all: nil),
        IntegerParse("1.0", all: nil),
        IntegerParse("1e3", all: nil),
        IntegerParse("0x10", all: nil),
        IntegerParse("12L", all: nil),
        IntegerParse("127", 127, 127, 127, 127),
        IntegerParse("128", nil, 128, 128, 128),
        IntegerParse("-128", -128, -128, -128, -128),
        IntegerParse("-129", nil, -129, -129, -129),
        IntegerParse("32768", nil, nil, 32768, 32768),
        IntegerParse("-32768", nil, .min, -32768, -32768),
        IntegerParse("2147483647", nil, nil, .max, 2_147_483_647),
        IntegerParse("2147483648", nil, nil, nil, 2_147_483_648),
        IntegerParse("-2147483648", nil, nil, .min, -2_147_483_648),
        IntegerParse("9223372036854775807", nil, nil, nil, .max),
        IntegerParse("-9223372036854775808", nil, nil, nil, .min),
        IntegerParse("9223372036854775808", all: nil),
        IntegerParse("99999999999999999999999", all: nil),
        // Java's Character.digit: any decimal digit of the Basic Multilingual Plane, none beyond it.
        IntegerParse("\u{0661}\u{0662}", all: 12),              // Arabic-Indic
        IntegerParse("-\u{FF17}", all: -7),                    // fullwidth
        IntegerParse("\u{0967}2\u{0969}", 123, 123, 123, 123),  // Devanagari mixed with ASCII
        IntegerParse("\u{1D7CF}", all: nil),                   // mathematical bold 1: outside the BMP
        IntegerParse("\u{00B2}", all: nil),                    // superscript two: a digit, not a decimal digit
        IntegerParse("\u{2163}", all: nil),                    // Roman numeral four: numeric, not a digit
    ]

    @Test(
        "strings read as integers like Java's parseByte, parseShort, parseInt, parseLong",
        arguments: integerParses)
    func integerParsing(_ p: IntegerParse) async {
        #expect(JavaNumberText.parseInteger(p.text, as: Int8.self) == p.byte)
        #expect(JavaNumberText.parseInteger(p.text, as: Int16.self) == p.short)
        #expect(JavaNumberText.parseInteger(p.text, as: Int32.self) == p.int)
        #expect(JavaNumberText.parseInteger(p.text, as: Int64.self) == p.long)
        await Self.expectRead(p.text, as: "byte", p.byte, sameAs: ==) { try $0.asInt8() }
        await Self.expectRead(p.text, as: "short", p.short, sameAs: ==) { try $0.asInt16() }
        await Self.expectRead(p.text, as: "int", p.int, sameAs: ==) { try $0.asInt32() }
        await Self.expectRead(p.text, as: "long", p.long, sameAs: ==) { try $0.asInt64() }
    }
}

// MARK: - String to floating point

extension JavaConversionTests {
    /// A string read as `double` and `float`; `nil` where Java throws `NumberFormatException`.
    struct FloatingPointParse: Sendable, CustomTestStringConvertible {
        let text: String
        let double: Double?
        let float: Float?

        init(_ text: String, _ double: Double?, _ float: Float?) {
            (self.text, self.double, self.float) = (text, double, float)
        }

        /// A value that is the same as `double` and as `float`.
        init(_ text: String, _ value: Double?) {
            self.init(text, value, value.map(Float.init))
        }

        var testDescription: String { text.debugDescription }
    }

    static let floatingPointParses: [FloatingPointParse] = [
        FloatingPointParse("1.5", 1.5),
        FloatingPointParse(" 1.5 ", 1.5),
        FloatingPointParse("\t1.5\n", 1.5),
        FloatingPointParse("\u{0}1.5\u{1F}", 1.5),
        FloatingPointParse("1.5f", 1.5),
        FloatingPointParse("1.5F", 1.5),
        FloatingPointParse("1.5d", 1.5),
        FloatingPointParse("1.5D", 1.5),
        FloatingPointParse("1e3", 1000),
        FloatingPointParse("-2.5E-4", -2.5e-4),
        FloatingPointParse("1e+3f", 1000),
        FloatingPointParse(".5", 0.5),
        FloatingPointParse("1.", 1),
        FloatingPointParse("12", 12),
        FloatingPointParse("-0", -0.0),
        FloatingPointParse("+.5e1", 5),
        FloatingPointParse("NaN", .nan),
        FloatingPointParse("-NaN", .nan),
        FloatingPointParse("Infinity", .infinity),
        FloatingPointParse("+Infinity", .infinity),
        FloatingPointParse("-Infinity", -.infinity),
        FloatingPointParse("0x1p3", 8),
        FloatingPointParse("0X1.8P1", 3),
        FloatingPointParse("0x.8p1f", 1),
        FloatingPointParse("-0x1p-2d", -0.25),
        FloatingPointParse("1e400", .infinity),
        FloatingPointParse("1e-400", 0),
        FloatingPointParse("4.9e-324", .leastNonzeroMagnitude, 0),
        // Rounds to `Float` from the text: through `Double` it would round to the next `Float` up.
        FloatingPointParse(
            "1.00000017881393432617187499", 1.0000001788139343, Float(bitPattern: 0x3F80_0001)),
        FloatingPointParse("inf", nil),
        FloatingPointParse("+inf", nil),
        FloatingPointParse("infinity", nil),
        FloatingPointParse("INFINITY", nil),
        FloatingPointParse("nan", nil),
        FloatingPointParse("NaNf", nil),
        FloatingPointParse("Infinityd", nil),
        FloatingPointParse("1e", nil),
        FloatingPointParse("1e+", nil),
        FloatingPointParse(".", nil),
        FloatingPointParse(".e1", nil),
        FloatingPointParse("", nil),
        FloatingPointParse("   ", nil),
        FloatingPointParse("f", nil),
        FloatingPointParse("0x1", nil),
        FloatingPointParse("0x1.8", nil),
        FloatingPointParse("0x.p1", nil),
        FloatingPointParse("0x1pf", nil),
        FloatingPointParse("1,5", nil),
        FloatingPointParse("1_000", nil),
        FloatingPointParse("1.5ff", nil),
        FloatingPointParse("1.5 f", nil),
        FloatingPointParse("\u{A0}1.5", nil),
        FloatingPointParse("1.5\u{2003}", nil),
        FloatingPointParse("--1", nil),
    ]

    @Test(
        "strings read as float and double like Java's Float.valueOf and Double.valueOf",
        arguments: floatingPointParses)
    func floatingPointParsing(_ p: FloatingPointParse) async {
        let double = JavaNumberText.parseFloatingPoint(p.text, as: Double.self)
        let float = JavaNumberText.parseFloatingPoint(p.text, as: Float.self)
        #expect(Self.same(double, p.double), "read \(String(describing: double))")
        #expect(Self.same(float, p.float), "read \(String(describing: float))")
        await Self.expectRead(p.text, as: "double", p.double, sameAs: Self.same) { try $0.asDouble() }
        await Self.expectRead(p.text, as: "float", p.float, sameAs: Self.same) { try $0.asFloat() }
    }
}

// MARK: - Floating point to string

extension JavaConversionTests {
    /// A number and the text Java's `toString` gives for it.
    struct Text<Number: BinaryFloatingPoint & Sendable>: Sendable, CustomTestStringConvertible {
        let number: Number
        let text: String

        init(_ number: Number, _ text: String) { (self.number, self.text) = (number, text) }

        var testDescription: String { text }
    }

    static let doubleTexts: [Text<Double>] = [
        Text(1e20, "1.0E20"),
        Text(1e-5, "1.0E-5"),
        Text(0.001, "0.001"),
        Text(1e-4, "1.0E-4"),
        Text(1_234_567, "1234567.0"),
        Text(9_999_999, "9999999.0"),
        Text(1e7, "1.0E7"),
        Text(123_456_789, "1.23456789E8"),
        Text(100, "100.0"),
        Text(1, "1.0"),
        Text(3.3, "3.3"),
        Text(0.1, "0.1"),
        Text(1.0 / 3, "0.3333333333333333"),
        Text(-2.5e-4, "-2.5E-4"),
        Text(1.234e-5, "1.234E-5"),
        Text(1e23, "1.0E23"),
        Text(9.223372036854776E18, "9.223372036854776E18"),
        Text(Double(Float(0.1)), "0.10000000149011612"),
        Text(0, "0.0"),
        Text(-0.0, "-0.0"),
        Text(.nan, "NaN"),
        Text(.infinity, "Infinity"),
        Text(-.infinity, "-Infinity"),
        Text(.greatestFiniteMagnitude, "1.7976931348623157E308"),
        Text(.leastNormalMagnitude, "2.2250738585072014E-308"),
        // One digit would do (`5e-324`, `2e-323`); Java gives the closest two-digit decimal.
        Text(.leastNonzeroMagnitude, "4.9E-324"),
        Text(.leastNonzeroMagnitude * 4, "2.0E-323"),
        Text(-.leastNonzeroMagnitude, "-4.9E-324"),
    ]

    static let floatTexts: [Text<Float>] = [
        Text(3.3, "3.3"),
        Text(0.1, "0.1"),
        Text(1.0 / 3, "0.33333334"),
        Text(1e10, "1.0E10"),
        Text(1e7, "1.0E7"),
        Text(16_777_216, "1.6777216E7"),
        Text(0.001, "0.001"),
        Text(1e-4, "1.0E-4"),
        Text(-2.5e-4, "-2.5E-4"),
        Text(1.5, "1.5"),
        Text(-0.0, "-0.0"),
        Text(.nan, "NaN"),
        Text(-.infinity, "-Infinity"),
        Text(.greatestFiniteMagnitude, "3.4028235E38"),
        Text(.leastNormalMagnitude, "1.1754944E-38"),
        Text(.leastNonzeroMagnitude, "1.4E-45"),
        Text(.leastNonzeroMagnitude * 2, "2.8E-45"),
    ]

    @Test("doubles read as strings like Java's Double.toString", arguments: doubleTexts)
    func doubleText(_ t: Text<Double>) throws {
        #expect(JavaNumberText.format(t.number) == t.text)
        #expect(try MessageValue.double(t.number).asString() == t.text)
        #expect(MessageValue.double(t.number).description == t.text)
    }

    @Test("floats read as strings like Java's Float.toString", arguments: floatTexts)
    func floatText(_ t: Text<Float>) throws {
        #expect(JavaNumberText.format(t.number) == t.text)
        #expect(try MessageValue.float(t.number).asString() == t.text)
        #expect(MessageValue.float(t.number).description == t.text)
    }
}

// MARK: - Through the message API

extension JavaConversionTests {
    @Test func propertyGettersUseJavaText() async throws {
        var message = Message.text("x")
        try message.setProperty(Float(1e20), forName: "f")
        try message.setProperty(1e-5, forName: "d")
        try message.setProperty(" 7", forName: "spaced")
        try message.setProperty("1.5f", forName: "suffixed")
        try message.setProperty("inf", forName: "swiftOnly")

        #expect(try message.property("f", as: String.self) == "1.0E20")
        #expect(try message.property("d", as: String.self) == "1.0E-5")
        #expect(try message.property("suffixed", as: Double.self) == 1.5)
        #expect(try message.property("suffixed", as: Float.self) == 1.5)
        #expect(try message.property("spaced", as: Double.self) == 7, "valueOf trims, parseInt does not")

        let error = await expectError(.messageFormat) { try message.property("spaced", as: Int32.self) }
        #expect(error?.message.contains("' 7'") == true)
        #expect(error?.message.contains("int") == true)
        await expectError(.messageFormat) { try message.property("spaced", as: Int.self) }
        await expectError(.messageFormat) { try message.property("swiftOnly", as: Double.self) }
    }

    @Test func mapAndStreamValuesUseJavaText() throws {
        guard case .map(let map) = Message.map(["f": .float(1e10), "n": .string("NaN")]).body,
            case .stream(let stream) = Message.stream([.double(-2.5e-4), .string("0x1p3")]).body
        else {
            Issue.record("unexpected bodies")
            return
        }
        #expect(try map["f"]?.asString() == "1.0E10")
        #expect(try map["n"]?.asFloat().isNaN == true)
        #expect(try stream[0].asString() == "-2.5E-4")
        #expect(try stream[1].asDouble() == 8)
    }

    @Test func conversionErrorsShowTheJavaText() async {
        let error = await expectError(.messageFormat) { try MessageValue.double(1e20).asInt64() }
        #expect(error?.message.contains("(1.0E20)") == true, "\(error?.message ?? "")")
    }
}
