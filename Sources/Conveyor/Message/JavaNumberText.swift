import Foundation

/// Numbers as Java reads and writes them as text, which is what the JMS conversion table means by
/// "a `String` converts to a number" and "a number converts to a `String`" (JMS 3.1 §3.5.4).
///
/// - Integers parse as `Byte.parseByte`, `Short.parseShort`, `Integer.parseInt` and `Long.parseLong`.
/// - Floating-point numbers parse as `Float.valueOf` and `Double.valueOf`.
/// - `Float` and `Double` print as `Float.toString` and `Double.toString` (JDK 19 and later).
enum JavaNumberText {
    /// Parses `text` as Java's `parseByte`/`parseShort`/`parseInt`/`parseLong` with radix 10 would.
    ///
    /// The text is an optional `+` or `-` followed by one or more decimal digits, and nothing else:
    /// no whitespace, no underscores, no empty string. Like Java's `Character.digit`, a digit is any
    /// Unicode decimal digit in the Basic Multilingual Plane (`"١٢"`, Arabic-Indic, reads as 12;
    /// Java reads text as UTF-16 units, so digits beyond that plane are not digits to it).
    /// - Parameters:
    ///   - text: The text to parse.
    ///   - type: The integer type to read.
    /// - Returns: The value, or `nil` when the text is not such a number or the number is out of range.
    static func parseInteger<T: FixedWidthInteger & SignedInteger>(_ text: String, as type: T.Type = T.self) -> T? {
        var scalars = text.unicodeScalars[...]
        let negative = scalars.first == "-"
        if negative || scalars.first == "+" { scalars = scalars.dropFirst() }
        guard !scalars.isEmpty else { return nil }
        // Accumulated as a negative number, as Java does, so that `T.min` (one more than `T.max` in
        // magnitude) fits.
        var value: T = 0
        for scalar in scalars {
            guard let digit = javaDecimalDigit(scalar) else { return nil }
            let (shifted, shiftOverflow) = value.multipliedReportingOverflow(by: 10)
            let (next, subtractOverflow) = shifted.subtractingReportingOverflow(T(digit))
            guard !shiftOverflow, !subtractOverflow else { return nil }
            value = next
        }
        if negative { return value }
        let (positive, overflow) = T.zero.subtractingReportingOverflow(value)
        return overflow ? nil : positive
    }

    /// Parses `text` as Java's `Float.valueOf`/`Double.valueOf` would.
    ///
    /// Characters up to U+0020 are trimmed from both ends (Java's `String.trim()`, not Unicode
    /// whitespace). What is left is an optional sign and then `NaN`, `Infinity`, a decimal literal
    /// (`1.5`, `1.`, `.5`, `1e3`, `2.5E-4`) or a hexadecimal literal with its binary exponent
    /// (`0x1.8p3`), the latter two optionally followed by one of the suffixes `f`, `F`, `d`, `D`.
    /// The value is rounded from the text directly to `T`.
    /// - Parameters:
    ///   - text: The text to parse.
    ///   - type: `Float` or `Double`.
    /// - Returns: The value, or `nil` when the text is not such a number.
    static func parseFloatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(
        _ text: String, as type: T.Type = T.self
    ) -> T? {
        var literal = Array(text.utf8)[...]
        while let first = literal.first, first <= 0x20 { literal.removeFirst() }
        while let last = literal.last, last <= 0x20 { literal.removeLast() }
        let negative = literal.first == UInt8(ascii: "-")
        if negative || literal.first == UInt8(ascii: "+") { literal.removeFirst() }

        if literal.elementsEqual("NaN".utf8) { return .nan }
        if literal.elementsEqual("Infinity".utf8) { return negative ? -.infinity : .infinity }
        if let last = literal.last, "fFdD".utf8.contains(last) { literal.removeLast() }
        guard isDecimalLiteral(literal) || isHexadecimalLiteral(literal),
            let magnitude = T(String(decoding: literal, as: UTF8.self))
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// The text Java's `Double.toString` gives for `value` (JDK 19 and later).
    ///
    /// `NaN`, `Infinity`, `-Infinity`, `0.0` and `-0.0` for the special values. Otherwise the
    /// shortest digits that read back as `value` (at least two when one would do, the pair closest
    /// to `value`), written plainly when 10⁻³ ≤ |value| < 10⁷ (`100.0`, `0.001`) and in Java's
    /// scientific notation otherwise (`1.0E7`, `2.5E-4`).
    /// - Parameter value: The number to write.
    /// - Returns: The text.
    static func format(_ value: Double) -> String {
        formatFloatingPoint(value)
    }

    /// The text Java's `Float.toString` gives for `value` (JDK 19 and later): the same form as for a
    /// `Double`, with the shortest digits that read back as this `Float` (`3.3`, `1.0E10`).
    /// - Parameter value: The number to write.
    /// - Returns: The text.
    static func format(_ value: Float) -> String {
        formatFloatingPoint(value)
    }

    // MARK: - Parsing

    /// The value of an ASCII decimal digit, or `nil` for any other byte.
    /// The value of a decimal digit as Java's `Character.digit(ch, 10)` sees it: ASCII `0`–`9` or any
    /// other Unicode decimal digit (general category Nd) in the Basic Multilingual Plane.
    private static func javaDecimalDigit(_ scalar: Unicode.Scalar) -> Int? {
        if scalar.isASCII { return decimalDigit(UInt8(scalar.value)).map(Int.init) }
        guard scalar.value <= 0xFFFF, scalar.properties.numericType == .decimal,
              let value = scalar.properties.numericValue else { return nil }
        return Int(value)
    }

    private static func decimalDigit(_ byte: UInt8) -> UInt8? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? byte - UInt8(ascii: "0") : nil
    }

    /// Whether `byte` is an ASCII hexadecimal digit.
    private static func isHexadecimalDigit(_ byte: UInt8) -> Bool {
        decimalDigit(byte) != nil || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    /// Whether `literal` (unsigned, without suffix) is digits with an optional point and fraction,
    /// at least one digit in all, then an optional exponent: `e` or `E`, an optional sign, digits.
    private static func isDecimalLiteral(_ literal: ArraySlice<UInt8>) -> Bool {
        var rest = literal
        var digits = rest.skip { decimalDigit($0) != nil }
        if rest.skip(UInt8(ascii: ".")) { digits += rest.skip { decimalDigit($0) != nil } }
        guard digits > 0 else { return false }
        if rest.skip(UInt8(ascii: "e")) || rest.skip(UInt8(ascii: "E")) {
            guard rest.skipExponent() else { return false }
        }
        return rest.isEmpty
    }

    /// Whether `literal` (unsigned, without suffix) is `0x` or `0X`, hexadecimal digits with an
    /// optional point and fraction, at least one digit in all, then the binary exponent Java
    /// requires: `p` or `P`, an optional sign, decimal digits.
    private static func isHexadecimalLiteral(_ literal: ArraySlice<UInt8>) -> Bool {
        var rest = literal
        guard rest.skip(UInt8(ascii: "0")), rest.skip(UInt8(ascii: "x")) || rest.skip(UInt8(ascii: "X")) else {
            return false
        }
        var digits = rest.skip(while: isHexadecimalDigit)
        if rest.skip(UInt8(ascii: ".")) { digits += rest.skip(while: isHexadecimalDigit) }
        guard digits > 0, rest.skip(UInt8(ascii: "p")) || rest.skip(UInt8(ascii: "P")) else { return false }
        return rest.skipExponent() && rest.isEmpty
    }

    // MARK: - Formatting

    /// Java's text for `value`, from the shortest digits Swift's `description` finds.
    private static func formatFloatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ value: T) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0.0" }
        let magnitude = value.magnitude
        guard var decimal = ScientificDecimal(magnitude.description) else {
            return sign + magnitude.description  // unreachable: Swift writes finite values as digits
        }
        if decimal.digits.count == 1 { decimal = twoDigitDecimal(closestTo: magnitude) ?? decimal }
        return sign + decimal.javaText
    }

    /// The decimal of two significant digits closest to `value` that still reads back as `value`.
    ///
    /// Java picks it where one digit would be enough: among the decimals of one or two digits that
    /// read back as the value, the one closest to it. So the least `Double` is `4.9E-324`, where
    /// Swift writes `5e-324`.
    private static func twoDigitDecimal<T: BinaryFloatingPoint & LosslessStringConvertible>(
        closestTo value: T
    ) -> ScientificDecimal? {
        // A `Float` widens to `Double` exactly, and `%.1e` rounds the exact binary value. The
        // nearest pair is closer than the one digit that reads back, so it reads back too unless the
        // values that round to `value` reach less far on its side; only powers of two have such a
        // lopsided range, and for none of them, in `Float` or `Double`, does the nearest pair fall out.
        guard let nearest = ScientificDecimal(String(format: "%.1e", Double(value))) else { return nil }
        return T(nearest.text) == value ? nearest : nil
    }
}

/// A positive decimal number as `d.ddd × 10^exponent`, written with Java's rules.
private struct ScientificDecimal {
    /// The significant digits in ASCII, the first one not zero and the last one not zero.
    var digits: [UInt8]
    /// The power of ten of the first digit.
    var exponent: Int

    /// Reads a positive number Swift or C wrote: `1234.5`, `0.00025`, `1e+20`, `4.9e-324`.
    init?(_ text: String) {
        let parts = text.split(separator: "e", maxSplits: 1, omittingEmptySubsequences: false)
        var exponent = 0
        if parts.count == 2 {
            guard let written = Int(parts[1]) else { return nil }
            exponent = written
        }
        var digits: [UInt8] = []
        var integerDigits: Int?
        for byte in parts[0].utf8 {
            if byte == UInt8(ascii: ".") {
                guard integerDigits == nil else { return nil }
                integerDigits = digits.count
            } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                digits.append(byte)
            } else {
                return nil
            }
        }
        exponent += (integerDigits ?? digits.count) - 1
        let leadingZeros = digits.prefix { $0 == UInt8(ascii: "0") }.count
        guard leadingZeros < digits.count else { return nil }
        digits.removeFirst(leadingZeros)
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        self.digits = digits
        self.exponent = exponent - leadingZeros
    }

    /// The number as C scientific notation, for reading back with Swift's parsers.
    var text: String {
        let fraction = digits.count > 1 ? "." + String(decoding: digits.dropFirst(), as: UTF8.self) : ""
        return String(decoding: digits.prefix(1), as: UTF8.self) + fraction + "e\(exponent)"
    }

    /// Java's form: plain with at least one fraction digit when 10⁻³ ≤ value < 10⁷ (`1234567.0`,
    /// `0.001`), otherwise one digit, a point, at least one more digit and `E` (`1.0E7`, `2.5E-4`).
    var javaText: String {
        let zero = UInt8(ascii: "0")
        var text: [UInt8]
        if (-3...6).contains(exponent) {
            if exponent >= 0 {
                let integerCount = exponent + 1
                text = Array(digits.prefix(integerCount))
                text += repeatElement(zero, count: integerCount - text.count)
                text.append(UInt8(ascii: "."))
                let fraction = digits.dropFirst(integerCount)
                text += fraction.isEmpty ? [zero] : Array(fraction)
            } else {
                text = [zero, UInt8(ascii: ".")] + repeatElement(zero, count: -exponent - 1) + digits
            }
        } else {
            text = [digits[0], UInt8(ascii: ".")]
            text += digits.count > 1 ? Array(digits.dropFirst()) : [zero]
            text += Array("E\(exponent)".utf8)
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension ArraySlice<UInt8> {
    /// Drops the leading bytes that match and tells how many there were.
    fileprivate mutating func skip(while matches: (UInt8) -> Bool) -> Int {
        let count = prefix(while: matches).count
        self = dropFirst(count)
        return count
    }

    /// Drops `byte` if the slice starts with it, and tells whether it did.
    fileprivate mutating func skip(_ byte: UInt8) -> Bool {
        guard first == byte else { return false }
        self = dropFirst()
        return true
    }

    /// Drops an exponent's value (an optional sign, then digits), and tells whether there was one.
    fileprivate mutating func skipExponent() -> Bool {
        if !skip(UInt8(ascii: "+")) { _ = skip(UInt8(ascii: "-")) }
        return skip { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } > 0
    }
}
