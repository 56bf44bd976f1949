import Foundation
import Testing

@testable import Conveyor

/// The message model: properties and their JMS conversions, bodies, value semantics, destination
/// parsing and error descriptions. Helpers and suites are nested so their names stay local.
@Suite("Message model")
struct MessageTests {}

// MARK: - Helpers

extension MessageTests {
    /// A type a value can be read as (the columns of the JMS 3.1 §3.5.4 conversion table).
    enum ReadType: String, CaseIterable, Sendable {
        case bool = "Bool"
        case int8 = "Int8"
        case int16 = "Int16"
        case int32 = "Int32"
        case int64 = "Int64"
        case float = "Float"
        case double = "Double"
        case string = "String"
    }
}

extension MessageValue {
    /// Reads the value with the `asX()` accessor for `type`, wrapped back as a ``MessageValue``.
    fileprivate func read(as type: MessageTests.ReadType) throws(ConveyorError) -> MessageValue {
        switch type {
        case .bool: .bool(try asBool())
        case .int8: .int8(try asInt8())
        case .int16: .int16(try asInt16())
        case .int32: .int32(try asInt32())
        case .int64: .int64(try asInt64())
        case .float: .float(try asFloat())
        case .double: .double(try asDouble())
        case .string: .string(try asString())
        }
    }
}

extension Message {
    /// Reads a property with the typed accessor ``Message/property(_:as:)`` for `type`.
    fileprivate func readProperty(
        _ name: String, as type: MessageTests.ReadType
    ) throws(ConveyorError) -> MessageValue? {
        switch type {
        case .bool: try property(name, as: Bool.self).map(MessageValue.bool)
        case .int8: try property(name, as: Int8.self).map(MessageValue.int8)
        case .int16: try property(name, as: Int16.self).map(MessageValue.int16)
        case .int32: try property(name, as: Int32.self).map(MessageValue.int32)
        case .int64: try property(name, as: Int64.self).map(MessageValue.int64)
        case .float: try property(name, as: Float.self).map(MessageValue.float)
        case .double: try property(name, as: Double.self).map(MessageValue.double)
        case .string: try property(name, as: String.self).map(MessageValue.string)
        }
    }
}

extension MessageTests {
    /// One cell of the conversion table: `written` read as `read` gives `expected`, or a
    /// `messageFormat` error when `expected` is nil.
    struct Conversion: Sendable, CustomTestStringConvertible {
        let written: MessageValue
        let read: ReadType
        let expected: MessageValue?

        var testDescription: String {
            "\(written.typeName)(\(written)) as \(read.rawValue) → \(expected.map { "\($0)" } ?? "messageFormat")"
        }

        /// JMS 3.1 §3.5.4: rows are the written type, the dictionary lists the readable columns with the
        /// value each yields; every other column must fail with `messageFormat`.
        static let table: [(written: MessageValue, readable: [ReadType: MessageValue])] = [
            (.bool(true), [.bool: .bool(true), .string: .string("true")]),
            (
                .int8(-7),
                [
                    .int8: .int8(-7), .int16: .int16(-7), .int32: .int32(-7), .int64: .int64(-7),
                    .string: .string("-7"),
                ]
            ),
            (.int16(300), [.int16: .int16(300), .int32: .int32(300), .int64: .int64(300), .string: .string("300")]),
            (.int32(70_000), [.int32: .int32(70_000), .int64: .int64(70_000), .string: .string("70000")]),
            (.int64(5_000_000_000), [.int64: .int64(5_000_000_000), .string: .string("5000000000")]),
            (.float(1.5), [.float: .float(1.5), .double: .double(1.5), .string: .string("1.5")]),
            (.double(2.25), [.double: .double(2.25), .string: .string("2.25")]),
            // Boolean.valueOf("12") is false; every numeric type parses "12".
            (
                .string("12"),
                [
                    .bool: .bool(false), .int8: .int8(12), .int16: .int16(12), .int32: .int32(12), .int64: .int64(12),
                    .float: .float(12), .double: .double(12), .string: .string("12"),
                ]
            ),
        ]

        static let all: [Conversion] = table.flatMap { row in
            ReadType.allCases.map { Conversion(written: row.written, read: $0, expected: row.readable[$0]) }
        }
    }

    /// A string property parsed as a primitive; `expected` nil means a `messageFormat` error.
    struct StringParse: Sendable, CustomTestStringConvertible {
        let text: String
        let read: ReadType
        let expected: MessageValue?

        init(_ text: String, _ read: ReadType, _ expected: MessageValue?) {
            self.text = text
            self.read = read
            self.expected = expected
        }

        var testDescription: String {
            "\"\(text)\" as \(read.rawValue) → \(expected.map { "\($0)" } ?? "messageFormat")"
        }
    }

    struct Order: Codable, Equatable, Sendable {
        var id: Int
        var items: [String]
        var note: String?
    }

    struct Invoice: Codable, Equatable, Sendable {
        var number: String
        var total: Double
    }

    struct DiskOnFire: Error, CustomStringConvertible {
        var description: String { "disk on fire" }
    }

}

// MARK: - Properties

extension MessageTests {
    @Suite("Message properties: JMS conversion table")
    struct PropertyConversions {
        @Test("the table has every written × read pair")
        func tableIsExhaustive() {
            #expect(Conversion.all.count == 64)
            // JMS 3.1 §3.5.4 marks 29 cells as allowed.
            #expect(Conversion.all.filter { $0.expected != nil }.count == 29)
        }

        @Test("a property, map entry and stream element read alike", arguments: Conversion.all)
        func conversion(_ c: Conversion) async throws {
            var message = Message.empty
            try message.setProperty(value: c.written, forName: "p")
            let mapValue = try #require(
                {
                    if case .map(let map) = Message.map(["k": c.written]).body { return map["k"] }
                    return nil
                }())
            let streamValue = try #require(
                {
                    if case .stream(let values) = Message.stream([c.written]).body { return values.first }
                    return nil
                }())

            if let expected = c.expected {
                #expect(try message.readProperty("p", as: c.read) == expected)
                #expect(try mapValue.read(as: c.read) == expected)
                #expect(try streamValue.read(as: c.read) == expected)
            } else {
                let error = await expectError(.messageFormat) { try message.readProperty("p", as: c.read) }
                #expect(error?.message.contains(c.written.typeName) == true, "the error names the stored type")
                await expectError(.messageFormat) { try mapValue.read(as: c.read) }
                await expectError(.messageFormat) { try streamValue.read(as: c.read) }
            }
        }

        static let parses: [StringParse] = [
            StringParse("12", .int32, .int32(12)),
            StringParse("-128", .int8, .int8(-128)),
            StringParse("+42", .int16, .int16(42)),
            StringParse("9223372036854775807", .int64, .int64(.max)),
            StringParse("1.5", .float, .float(1.5)),
            StringParse("-2.5e3", .double, .double(-2500)),
            StringParse("true", .bool, .bool(true)),
            StringParse("TRUE", .bool, .bool(true)),
            StringParse("True", .bool, .bool(true)),
            StringParse("yes", .bool, .bool(false)),
            StringParse("1", .bool, .bool(false)),
            StringParse("", .bool, .bool(false)),
            StringParse("abc", .int8, nil),
            StringParse("abc", .int16, nil),
            StringParse("abc", .int32, nil),
            StringParse("abc", .int64, nil),
            StringParse("abc", .float, nil),
            StringParse("abc", .double, nil),
            StringParse("", .int32, nil),
            StringParse("1.5", .int32, nil),
            StringParse("200", .int8, nil),
            StringParse("40000", .int16, nil),
            StringParse("2147483648", .int32, nil),
            StringParse("9223372036854775808", .int64, nil),
        ]

        @Test("strings parse as primitives like Java's valueOf", arguments: PropertyConversions.parses)
        func stringParsing(_ p: StringParse) async throws {
            let message = try Message.empty.with("s", p.text)
            if let expected = p.expected {
                #expect(try message.readProperty("s", as: p.read) == expected)
                #expect(try MessageValue.string(p.text).read(as: p.read) == expected)
            } else {
                let error = await expectError(.messageFormat) { try message.readProperty("s", as: p.read) }
                #expect(error?.message.contains("'\(p.text)'") == true, "the error quotes the string")
                await expectError(.messageFormat) { try MessageValue.string(p.text).read(as: p.read) }
            }
        }

        @Test func swiftIntIsStoredAsLongAndReadFromAnyInteger() throws {
            var message = Message.empty
            try message.setProperty(5, forName: "n")
            #expect(message.property("n") == .int64(5))
            try message.setProperty(Int16(-3), forName: "s")
            #expect(try message.property("s", as: Int.self) == -3)
            try message.setProperty("77", forName: "t")
            #expect(try message.property("t", as: Int.self) == 77)
        }

        @Test("bytes are readable only as bytes", arguments: ReadType.allCases)
        func bytesOnlyReadAsBytes(_ type: ReadType) async throws {
            let value = MessageValue.bytes(Data([1, 2, 3]))
            #expect(try value.asBytes() == Data([1, 2, 3]))
            #expect(try Data.converting(value) == Data([1, 2, 3]))
            await expectError(.messageFormat) { try value.read(as: type) }
        }

        @Test("nothing but bytes is readable as bytes", arguments: Conversion.table.map(\.written))
        func onlyBytesReadAsBytes(_ value: MessageValue) async {
            let error = await expectError(.messageFormat) { try value.asBytes() }
            #expect(error?.message.contains("byte[]") == true)
        }
    }
}

extension MessageTests {
    @Suite("Message properties: set, read, remove")
    struct Properties {
        @Test func missingPropertyIsNil() throws {
            let message = try Message.text("x").with("present", 1)
            #expect(message.property("absent") == nil)
            #expect(!message.propertyExists("absent"))
            #expect(try message.property("absent", as: Int32.self) == nil)
            #expect(try message.property("absent", as: String.self) == nil)
            #expect(try message.property("absent", as: Bool.self) == nil)
            #expect(message.propertyExists("present"))
            #expect(!message.propertyExists("Present"), "names are case-sensitive")
        }

        @Test func setReadRemoveAndClear() throws {
            var message = Message.text("x")
            #expect(message.propertyNames.isEmpty)
            try message.setProperty("EU", forName: "region")
            try message.setProperty(Int32(3), forName: "count")
            try message.setProperty(true, forName: "urgent")
            #expect(Set(message.propertyNames) == ["region", "count", "urgent"])
            #expect(message.property("region") == .string("EU"))
            #expect(message.property("count") == .int32(3))
            #expect(message.property("urgent") == .bool(true))

            try message.setProperty("US", forName: "region")
            #expect(message.property("region") == .string("US"), "setting again replaces")
            #expect(message.propertyNames.count == 3)

            message.removeProperty("count")
            #expect(message.property("count") == nil)
            #expect(!message.propertyExists("count"))
            #expect(Set(message.propertyNames) == ["region", "urgent"])
            message.removeProperty("never-set")
            #expect(message.propertyNames.count == 2)

            message.clearProperties()
            #expect(message.propertyNames.isEmpty)
            #expect(!message.propertyExists("region"))
            #expect(!message.propertyExists("urgent"))
            #expect(message.text == "x", "clearProperties keeps the body")
        }

        @Test func withBuildsACopy() async throws {
            let original = Message.text("x")
            let built = try original.with("a", 1).with("b", "two").with("c", 2.5)
            #expect(built.property("a") == .int64(1))
            #expect(built.property("b") == .string("two"))
            #expect(built.property("c") == .double(2.5))
            #expect(built.text == "x")
            #expect(original.propertyNames.isEmpty, "the original is unchanged")
            await expectError(.messageFormat) { try original.with("1bad", 1) }
        }

        @Test(
            "valid names are accepted",
            arguments: [
                "_a", "$x", "région", "a1", "orderID", "JMS_vendor", "jmsLower",
                "nullable", "Android", "isActive",
            ])
        func validName(_ name: String) throws {
            var message = Message.empty
            try message.setProperty(Int32(7), forName: name)
            #expect(message.property(name) == .int32(7))
            #expect(message.propertyExists(name))
            #expect(try Message.empty.with(name, "v").property(name) == .string("v"))
        }

        @Test(
            "a name is valid as a property exactly when a selector reads it as an identifier",
            arguments: [
                ("prix€", true), ("£", true), ("a‿b", true), ("Ⅻ", true), ("e\u{301}", true), ("ın", true),
                ("x²", false), ("a·b", false), ("½", false), ("a-b", false), ("in", false), ("Escape", false),
            ] as [(String, Bool)])
        func namesFollowTheSelectorIdentifierRules(_ name: String, _ valid: Bool) async throws {
            var message = Message.empty
            if valid {
                try message.setProperty("v", forName: name)
                let selector = try Selector("\(name) = 'v'")
                #expect(selector.matches(message), "a selector finds the property it names")
            } else {
                await expectError(.messageFormat) { try message.setProperty("v", forName: name) }
                await expectError(.invalidSelector) { try Selector("\(name) = 'v'") }
            }
        }

        @Test(
            "invalid names are rejected",
            arguments: [
                "", "1abc", "a-b", "a b", "a.b", "NULL", "null", "and", "AND", "And", "or", "not", "TRUE", "false",
                "between", "like", "in", "is", "escape", "JMSFoo", "JMS", "JMSXDeliveryCount", "JMSCorrelationID",
            ])
        func invalidName(_ name: String) async {
            var message = Message.empty
            await expectError(.messageFormat) { try message.setProperty(1, forName: name) }
            await expectError(.messageFormat) { try message.setProperty(value: .string("v"), forName: name) }
            await expectError(.messageFormat) { try Message.empty.with(name, true) }
            #expect(message.propertyNames.isEmpty, "nothing was set")
        }

        @Test func bytesAreRejectedAsPropertyValues() async {
            var message = Message.empty
            let error = await expectError(.messageFormat) { try message.setProperty(Data([1, 2]), forName: "blob") }
            #expect(error?.message.contains("blob") == true)
            await expectError(.messageFormat) { try message.setProperty(value: .bytes(Data()), forName: "blob") }
            await expectError(.messageFormat) { try Message.empty.with("blob", Data([1])) }
            #expect(!message.propertyExists("blob"))
        }

        @Test func jmsxPropertiesHaveTheirJMSTypes() async throws {
            var message = Message.empty
            try message.setProperty("orders-eu", forName: "JMSXGroupID")
            try message.setProperty("alice", forName: "JMSXUserID")
            try message.setProperty("billing", forName: "JMSXAppID")
            try message.setProperty(3, forName: "JMSXGroupSeq")
            #expect(message.property("JMSXGroupID") == .string("orders-eu"))
            #expect(message.property("JMSXUserID") == .string("alice"))
            #expect(message.property("JMSXAppID") == .string("billing"))
            #expect(message.property("JMSXGroupSeq") == .int32(3), "any integer is stored as a JMS int")
            try message.setProperty(Int8(4), forName: "JMSXGroupSeq")
            #expect(message.property("JMSXGroupSeq") == .int32(4))

            for name in ["JMSXGroupID", "JMSXUserID", "JMSXAppID"] {
                let error = await expectError(.messageFormat) { try message.setProperty(7, forName: name) }
                #expect(error?.message.contains("String") == true)
                await expectError(.messageFormat) { try message.setProperty(true, forName: name) }
            }
            for value in [MessageValue.string("5"), .double(1), .bool(true), .int64(Int64(Int32.max) + 1)] {
                let error = await expectError(.messageFormat) { try message.setProperty(value: value, forName: "JMSXGroupSeq") }
                #expect(error?.message.contains("int") == true)
            }
            #expect(message.property("JMSXGroupID") == .string("orders-eu"), "a rejected value changes nothing")
            #expect(message.property("JMSXGroupSeq") == .int32(4))
            #expect(try Message.empty.with("JMSXGroupID", "g").property("JMSXGroupID") == .string("g"))
        }

        @Test func deliveryCountIsAnsweredAsJMSXDeliveryCount() throws {
            var message = Message.text("x")
            #expect(message.property("JMSXDeliveryCount") == nil, "not delivered yet")
            #expect(!message.propertyExists("JMSXDeliveryCount"))
            #expect(!message.propertyNames.contains("JMSXDeliveryCount"))

            message.deliveryCount = 3
            #expect(message.property("JMSXDeliveryCount") == .int32(3))
            #expect(message.propertyExists("JMSXDeliveryCount"))
            #expect(message.propertyNames == ["JMSXDeliveryCount"], "listed like every property that exists")
            try message.setProperty("EU", forName: "region")
            #expect(Set(message.propertyNames) == ["region", "JMSXDeliveryCount"])
            message.clearProperties()
            #expect(message.propertyNames == ["JMSXDeliveryCount"], "set by the provider, not an application property")
            #expect(try message.property("JMSXDeliveryCount", as: Int.self) == 3)
            #expect(try message.property("JMSXDeliveryCount", as: String.self) == "3")
            #expect(message.property("jmsxdeliverycount") == nil, "names are case-sensitive")

            message.deliveryCount = Int(Int32.max) + 10
            #expect(message.property("JMSXDeliveryCount") == .int32(.max), "clamped to a JMS int")
        }
    }
}

// MARK: - Bodies

extension MessageTests {
    @Suite("Message bodies")
    struct Bodies {
        struct Parcel: Codable, Equatable { var id: Int }

        @Test func bodyAsReturnsEachKindAsJMSGetBodyDoes() async throws {
            #expect(try Message().body(as: String.self) == nil, "no body: nil for any type")
            #expect(try Message().body(as: Data.self) == nil)
            #expect(try Message.text("hi").body(as: String.self) == "hi")
            #expect(try Message.text("hi").body(as: Any.self) as? String == "hi")
            #expect(try Message.bytes(Data([1, 2])).body(as: Data.self) == Data([1, 2]))
            #expect(try Message.bytes(Data([1, 2])).body(as: [UInt8].self) == [1, 2])
            #expect(try Message.map(["a": .int32(1)]).body(as: [String: MessageValue].self) == ["a": .int32(1)])
            let object = try Message.object(Parcel(id: 7))
            #expect(try object.body(as: Parcel.self) == Parcel(id: 7))
            #expect(try object.body(as: Data.self) == (try JSONEncoder().encode(Parcel(id: 7))))

            let wrongType = await expectError(.messageFormat) { try Message.text("hi").body(as: Data.self) }
            #expect(wrongType?.message.contains("TextMessage") == true)
            await expectError(.messageFormat) { try Message.bytes(Data([1])).body(as: String.self) }
            await expectError(.messageFormat) { try Message.map([:]).body(as: String.self) }
            await expectError(.messageFormat) { try object.body(as: [String].self) }
            await expectError(.messageFormat) { try object.body(as: Int.self) }
            let stream = await expectError(.messageFormat) { try Message.stream([.int32(1)]).body(as: Any.self) }
            #expect(stream?.message.contains("StreamMessage") == true)
        }

        @Test func isBodyAssignableAnswersWhatBodyAsWouldDo() throws {
            #expect(Message().isBodyAssignable(to: Int.self), "no body: assignable to anything")
            #expect(Message.text("hi").isBodyAssignable(to: String.self))
            #expect(!Message.text("hi").isBodyAssignable(to: Data.self))
            #expect(Message.bytes(Data()).isBodyAssignable(to: [UInt8].self))
            #expect(!Message.stream([]).isBodyAssignable(to: Any.self), "never for a stream, as in JMS")
            let object = try Message.object(Parcel(id: 1))
            #expect(object.isBodyAssignable(to: Parcel.self))
            #expect(!object.isBodyAssignable(to: [Int].self))
        }

        @Test func textBody() {
            let message = Message.text("héllo")
            #expect(message.text == "héllo")
            #expect(message.bytes == nil)
            #expect(message.body == .text("héllo"))
            #expect(message.body.byteCount == 6, "UTF-8 bytes, not characters")
        }

        @Test func bytesBodyFromDataAndArray() {
            let fromData = Message.bytes(Data([1, 2, 3]))
            let fromArray = Message.bytes([1, 2, 3] as [UInt8])
            #expect(fromData.bytes == Data([1, 2, 3]))
            #expect(fromArray.bytes == Data([1, 2, 3]))
            #expect(fromData.body == fromArray.body)
            #expect(fromData.text == nil)
            #expect(fromData.body.byteCount == 3)
        }

        @Test func mapAndStreamBodies() {
            let values: [String: MessageValue] = ["a": .int32(1), "bb": .string("xyz"), "c": .bytes(Data([9]))]
            let map = Message.map(values)
            #expect(map.body == .map(values))
            #expect(map.text == nil)
            #expect(map.bytes == nil)
            #expect(map.body.byteCount == (1 + 4) + (2 + 3) + (1 + 1))

            let stream = Message.stream([.bool(true), .int64(1), .bytes(Data([1, 2])), .double(0)])
            #expect(stream.body == .stream([.bool(true), .int64(1), .bytes(Data([1, 2])), .double(0)]))
            #expect(stream.text == nil)
            #expect(stream.bytes == nil)
            #expect(stream.body.byteCount == 1 + 8 + 2 + 8)
        }

        @Test func mapAndStreamAccessors() throws {
            let map = Message.map(["count": .int32(3), "name": .string("x")])
            #expect(map.map == ["count": .int32(3), "name": .string("x")])
            #expect(try map.map?["count"]?.asInt64() == 3, "values read with the conversion table")
            #expect(map.stream == nil && map.text == nil && map.bytes == nil)
            let stream = Message.stream([.bool(true), .string("12")])
            #expect(stream.stream == [.bool(true), .string("12")])
            #expect(try stream.stream?[1].asInt32() == 12)
            #expect(stream.map == nil && stream.text == nil)
            for other in [Message.text("t"), .bytes([1]), .empty, try .object(1)] {
                #expect(other.map == nil && other.stream == nil, "\(other.body.kind)")
            }
        }

        @Test func emptyBody() {
            #expect(Message.empty.body == .empty)
            #expect(Message().body == .empty)
            #expect(Message.empty.text == nil)
            #expect(Message.empty.bytes == nil)
            #expect(Message.empty.body.byteCount == 0)
        }

        @Test func objectRoundTrip() throws {
            let order = Order(id: 42, items: ["apple", "pear"], note: nil)
            let message = try Message.object(order)
            #expect(try message.decodeObject(Order.self) == order)
            #expect(message.body.kind == "ObjectMessage")
            #expect(message.text == nil)
            #expect(message.bytes == nil)
            guard case .object(let data) = message.body else {
                Issue.record("expected an object body, got \(message.body.kind)")
                return
            }
            #expect(message.body.byteCount == data.count)
            #expect(message.body.byteCount > 0)
            #expect(try Message.object([1, 2, 3]).decodeObject([Int].self) == [1, 2, 3])
        }

        @Test func objectDecodedAsTheWrongTypeIsAFormatError() async throws {
            let message = try Message.object(Order(id: 1, items: [], note: "n"))
            let error = await expectError(.messageFormat) { try message.decodeObject(Invoice.self) }
            #expect(error?.underlying != nil, "the decoding error is kept")
            #expect(error?.message.contains("Invoice") == true)
        }

        @Test(
            "decodeObject on a non-object body is a format error",
            arguments: [
                Message.text("{\"id\":1,\"items\":[]}"), .bytes(Data("{}".utf8)), .empty, .map([:]), .stream([]),
            ])
        func decodeObjectOnOtherKinds(_ message: Message) async {
            let error = await expectError(.messageFormat) { try message.decodeObject(Order.self) }
            #expect(error?.message.contains(message.body.kind) == true, "the error names the actual kind")
        }

        @Test func unencodableObjectIsAFormatError() async {
            let error = await expectError(.messageFormat) { try Message.object(Double.nan) }
            #expect(error?.underlying != nil)
        }

        @Test(
            "kind names the JMS message type",
            arguments: [
                (MessageBody.empty, "Message"), (.text("t"), "TextMessage"), (.bytes(Data()), "BytesMessage"),
                (.map([:]), "MapMessage"), (.stream([]), "StreamMessage"), (.object(Data("{}".utf8)), "ObjectMessage"),
            ])
        func kindNames(_ body: MessageBody, _ name: String) {
            #expect(body.kind == name)
        }

        @Test(
            "byteCount of single values",
            arguments: [
                (MessageValue.bool(false), 1), (.int8(1), 1), (.int16(1), 2), (.int32(1), 4), (.int64(1), 8),
                (.float(1), 4), (.double(1), 8), (.string("äb"), 3), (.bytes(Data(count: 10)), 10),
            ])
        func valueByteCount(_ value: MessageValue, _ size: Int) {
            #expect(MessageBody.stream([value]).byteCount == size)
            #expect(MessageBody.map(["k": value]).byteCount == size + 1)
        }
    }
}

// MARK: - Value semantics

extension MessageTests {
    @Suite("Message is a value")
    struct ValueSemantics {
        @Test func modifyingACopyLeavesTheOriginal() throws {
            var original = Message.map(["a": .int32(1)])
            try original.setProperty("one", forName: "p")
            original.correlationID = "c-1"

            var copy = original
            copy.body = .map(["a": .int32(2), "b": .bool(true)])
            try copy.setProperty("two", forName: "p")
            try copy.setProperty(1, forName: "extra")
            copy.correlationID = "c-2"
            copy.type = "changed"
            copy.replyTo = .queue(Queue("replies"))
            copy.priority = 9
            copy.deliveryCount = 2

            #expect(original.body == .map(["a": .int32(1)]))
            #expect(original.property("p") == .string("one"))
            #expect(!original.propertyExists("extra"))
            #expect(original.correlationID == "c-1")
            #expect(original.type == nil)
            #expect(original.replyTo == nil)
            #expect(original.priority == 4)
            #expect(original.deliveryCount == 0)
            #expect(copy.property("p") == .string("two"))

            copy.clearProperties()
            #expect(original.propertyNames == ["p"])
        }

        @Test func changingTheSendHeadersOfACopyLeavesTheOriginal() {
            var original = Message.text("shared")
            original.messageID = MessageID(origin: "o", sequence: 1)
            original.timestamp = 10
            original.destination = .queue(Queue("a"))
            original.deliveryMode = .nonPersistent
            original.expiration = 20
            original.deliveryTime = 30

            var copy = original
            copy.messageID = MessageID(origin: "o", sequence: 2)
            copy.timestamp = 11
            copy.destination = .topic(Topic("b"))
            copy.deliveryMode = .persistent
            copy.priority = 0
            copy.expiration = 21
            copy.deliveryTime = 31
            copy.redelivered = true

            #expect(original.messageID == MessageID(origin: "o", sequence: 1))
            #expect(original.timestamp == 10)
            #expect(original.destination == .queue(Queue("a")))
            #expect(original.deliveryMode == .nonPersistent)
            #expect(original.priority == 4)
            #expect(original.expiration == 20)
            #expect(original.deliveryTime == 30)
            #expect(!original.redelivered)
            #expect(original.text == "shared" && copy.text == "shared")
            #expect(copy.messageID == MessageID(origin: "o", sequence: 2))
            #expect(copy.destination == .topic(Topic("b")))
        }

        @Test func bytesBodyCopiesAreIndependent() {
            let original = Message.bytes([1, 2, 3])
            var copy = original
            if case .bytes(var data) = copy.body {
                data[0] = 99
                copy.body = .bytes(data)
            }
            #expect(original.bytes == Data([1, 2, 3]))
            #expect(copy.bytes == Data([99, 2, 3]))
        }
    }
}

// MARK: - Destinations and errors

extension MessageTests {
    @Suite("Destination parsing")
    struct DestinationParsing {
        @Test(
            "valid destinations parse",
            arguments: [
                ("queue://a", Destination.queue(Queue("a"))), ("topic://b", .topic(Topic("b"))),
                ("c", .queue(Queue("c"))),
                ("QUEUE://x", .queue(Queue("x"))), ("Topic://prices.eu", .topic(Topic("prices.eu"))),
                ("topic://a://b", .topic(Topic("a://b"))),
                (String(repeating: "q", count: 255), .queue(Queue(String(repeating: "q", count: 255)))),
            ])
        func parses(_ text: String, _ expected: Destination) throws {
            let destination = try Destination(parsing: text)
            #expect(destination == expected)
            #expect(!destination.isTemporary)
        }

        @Test func unknownSchemeIsNamed() async {
            let error = await expectError(.invalidDestination) { try Destination(parsing: "http://x") }
            #expect(error?.message.contains("http") == true)
        }

        @Test(
            "invalid names are rejected",
            arguments: [
                "", "queue://", "topic://", String(repeating: "a", count: 300),
                "topic://" + String(repeating: "b", count: 256), "a\nb", "queue://tab\there", "ftp://x",
            ])
        func invalid(_ text: String) async {
            await expectError(.invalidDestination) { try Destination(parsing: text) }
        }

        @Test(
            "description round trips",
            arguments: [
                Destination.queue(Queue("a")), .topic(Topic("b")), .queue(Queue("orders.eu")),
                .topic(Topic("a://b")), .queue(Queue("région")),
            ])
        func descriptionRoundTrips(_ destination: Destination) throws {
            #expect(try Destination(parsing: destination.description) == destination)
            let scheme = if case .queue = destination { "queue://" } else { "topic://" }
            #expect(destination.description == scheme + destination.name)
        }
    }
}

extension MessageTests {
    @Suite("ConveyorError")
    struct Errors {
        @Test func descriptionHasCodeAndMessage() {
            let error = ConveyorError(.messageFormat, "bad value")
            #expect(error.description.contains("message format"))
            #expect(error.description.contains("bad value"))
            #expect(error.description == "\(error.code): \(error.message)")
            #expect(!error.description.contains("caused by"))
        }

        @Test func descriptionIncludesTheUnderlyingError() {
            let error = ConveyorError(.storage, "could not write", underlying: DiskOnFire())
            #expect(error.description.contains("storage"))
            #expect(error.description.contains("could not write"))
            #expect(error.description.contains("disk on fire"))
        }

        @Test func codesHaveDistinctNames() {
            let codes: [ConveyorError.Code] = [
                .illegalState, .invalidSelector, .invalidDestination, .messageFormat, .transactionRolledBack,
                .resourceAllocation, .invalidClientID, .storage, .timeout,
            ]
            #expect(Set(codes.map(\.description)).count == codes.count)
            #expect(Set(codes).count == codes.count)
            #expect(codes.allSatisfy { !$0.description.isEmpty })
        }
    }
}
