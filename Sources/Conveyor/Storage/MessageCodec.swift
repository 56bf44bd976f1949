import Foundation

/// The compact, versioned binary form in which persistent stores keep messages, subscriptions and
/// queue keys.
///
/// Every encoding starts with a format version byte, so a later format can be told apart and old
/// data still read. Integers are little-endian fixed width where their range is small (property and
/// body values), and LEB128 varints (zig-zag for signed values) for lengths, counts and header
/// times, which are mostly small or zero. Strings are UTF-8 with a varint length; floats are kept by
/// bit pattern, so `-0.0` and NaN payloads survive.
///
/// Message format, version 1:
/// ```
/// u8 version (1)
/// u8 flags      1 messageID · 2 correlationID · 4 replyTo · 8 destination · 16 type · 32 redelivered
/// u8 deliveryMode (1 non-persistent, 2 persistent)
/// zvarint priority, timestamp, expiration, deliveryTime, deliveryCount
/// [string origin, varint sequence]              when messageID is set
/// [string correlationID] [destination replyTo] [destination destination] [string type]
/// varint propertyCount, then (string name, value) × propertyCount
/// u8 bodyKind (0 empty · 1 text · 2 bytes · 3 map · 4 stream · 5 object), then its payload
/// ```
/// A destination is `u8 kind` (0 queue, 1 topic, +2 if temporary) then a string. A value is a
/// `u8 tag` (1 bool … 9 bytes, in ``MessageValue``'s case order) then its payload.
///
/// Decoding rejects truncated input, unknown tags or versions, invalid UTF-8, duplicate names and
/// trailing bytes with a ``ConveyorError/Code/storage`` error that says what is wrong.
package enum MessageCodec {
    /// The format version written by this build (the first byte of every encoding).
    package static let formatVersion: UInt8 = 1

    // MARK: Message

    /// About how many bytes a message encodes to (at least as many, unless it has long headers or
    /// property names): room to reserve before encoding it.
    package static func estimatedSize(of message: Message) -> Int {
        64 + message.body.byteCount + 16 * message.properties.count
    }

    /// Encodes a message: every header field, the properties and the body.
    /// - Parameter message: The message.
    /// - Returns: The encoded bytes.
    package static func encode(_ message: Message) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(message, into: &buffer)
        return buffer
    }

    /// Appends the encoding of a message to `buffer`.
    /// - Parameters:
    ///   - message: The message.
    ///   - buffer: Where the bytes go; existing contents are kept.
    package static func encode(_ message: Message, into buffer: inout [UInt8]) {
        // `reserveCapacity` allocates exactly what it is asked for: doubling keeps appending many
        // messages to one buffer linear.
        let needed = buffer.count + estimatedSize(of: message)
        if needed > buffer.capacity { buffer.reserveCapacity(max(needed, 2 * buffer.capacity)) }
        var writer = Writer(buffer: [])
        swap(&writer.buffer, &buffer)
        writer.byte(formatVersion)
        var flags: UInt8 = 0
        if message.messageID != nil { flags |= Flag.messageID }
        if message.correlationID != nil { flags |= Flag.correlationID }
        if message.replyTo != nil { flags |= Flag.replyTo }
        if message.destination != nil { flags |= Flag.destination }
        if message.type != nil { flags |= Flag.type }
        if message.redelivered { flags |= Flag.redelivered }
        writer.byte(flags)
        writer.byte(UInt8(truncatingIfNeeded: message.deliveryMode.rawValue))
        writer.signed(Int64(message.priority))
        writer.signed(message.timestamp)
        writer.signed(message.expiration)
        writer.signed(message.deliveryTime)
        writer.signed(Int64(message.deliveryCount))
        if let id = message.messageID {
            writer.string(id.origin)
            writer.varint(id.sequence)
        }
        if let correlationID = message.correlationID { writer.string(correlationID) }
        if let replyTo = message.replyTo { writer.destination(replyTo) }
        if let destination = message.destination { writer.destination(destination) }
        if let type = message.type { writer.string(type) }
        writer.varint(UInt64(message.properties.count))
        for (name, value) in message.properties {
            writer.string(name)
            writer.value(value)
        }
        switch message.body {
        case .empty:
            writer.byte(BodyKind.empty)
        case .text(let text):
            writer.byte(BodyKind.text)
            writer.string(text)
        case .bytes(let data):
            writer.byte(BodyKind.bytes)
            writer.data(data)
        case .map(let map):
            writer.byte(BodyKind.map)
            writer.varint(UInt64(map.count))
            for (name, value) in map {
                writer.string(name)
                writer.value(value)
            }
        case .stream(let values):
            writer.byte(BodyKind.stream)
            writer.varint(UInt64(values.count))
            for value in values { writer.value(value) }
        case .object(let data):
            writer.byte(BodyKind.object)
            writer.data(data)
        }
        swap(&writer.buffer, &buffer)
    }

    /// Decodes a message written by ``encode(_:into:)``.
    /// - Parameter bytes: Exactly one encoded message.
    /// - Returns: The message.
    /// - Throws: ``ConveyorError/Code/storage`` naming what is wrong when the bytes are truncated or corrupt.
    package static func decodeMessage(_ bytes: [UInt8]) throws(ConveyorError) -> Message {
        try bytes.withUnsafeBytes { raw in Result { () throws(ConveyorError) in try decodeMessage(raw) } }.get()
    }

    /// Decodes a message in place, for instance straight from a memory-mapped database page.
    /// - Parameter bytes: Exactly one encoded message.
    /// - Returns: The message; it does not refer to `bytes` afterwards.
    /// - Throws: ``ConveyorError/Code/storage`` naming what is wrong when the bytes are truncated or corrupt.
    package static func decodeMessage(_ bytes: UnsafeRawBufferPointer) throws(ConveyorError) -> Message {
        var reader = Reader(bytes, what: "message")
        try reader.version()
        let flags = try reader.byte("header flags")
        guard flags & ~Flag.all == 0 else { throw reader.corrupt("unknown header flags \(flags)") }
        var message = Message()
        let modeRaw = try reader.byte("delivery mode")
        guard let mode = DeliveryMode(rawValue: Int(modeRaw)) else {
            throw reader.corrupt("unknown delivery mode \(modeRaw)")
        }
        message.deliveryMode = mode
        message.priority = try reader.int("priority")
        message.timestamp = try reader.signed("timestamp")
        message.expiration = try reader.signed("expiration")
        message.deliveryTime = try reader.signed("delivery time")
        message.deliveryCount = try reader.int("delivery count")
        message.redelivered = flags & Flag.redelivered != 0
        if flags & Flag.messageID != 0 {
            let origin = try reader.string("message ID origin")
            message.messageID = MessageID(origin: origin, sequence: try reader.varint("message ID sequence"))
        }
        if flags & Flag.correlationID != 0 { message.correlationID = try reader.string("correlation ID") }
        if flags & Flag.replyTo != 0 { message.replyTo = try reader.destination("reply-to destination") }
        if flags & Flag.destination != 0 { message.destination = try reader.destination("destination") }
        if flags & Flag.type != 0 { message.type = try reader.string("type") }
        message.properties = try reader.namedValues("properties")
        let kind = try reader.byte("body kind")
        switch kind {
        case BodyKind.empty: message.body = .empty
        case BodyKind.text: message.body = .text(try reader.string("text body"))
        case BodyKind.bytes: message.body = .bytes(try reader.data("bytes body"))
        case BodyKind.map: message.body = .map(try reader.namedValues("map body"))
        case BodyKind.stream:
            let count = try reader.count("stream body", minimumElementSize: 2)
            var values: [MessageValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try reader.value("stream body")) }
            message.body = .stream(values)
        case BodyKind.object: message.body = .object(try reader.data("object body"))
        default: throw reader.corrupt("unknown body kind \(kind)")
        }
        try reader.finish()
        return message
    }

    // MARK: Subscription record

    /// Encodes a durable subscription record.
    /// - Parameter record: The record.
    /// - Returns: The encoded bytes.
    package static func encode(_ record: SubscriptionRecord) -> [UInt8] {
        var writer = Writer(buffer: [])
        writer.byte(formatVersion)
        var flags: UInt8 = 0
        if record.key.clientID != nil { flags |= 1 }
        if record.selector != nil { flags |= 2 }
        if record.noLocal { flags |= 4 }
        if record.isShared { flags |= 8 }
        writer.byte(flags)
        if let clientID = record.key.clientID { writer.string(clientID) }
        writer.string(record.key.name)
        writer.string(record.topic)
        if let selector = record.selector { writer.string(selector) }
        return writer.buffer
    }

    /// Decodes a subscription record written by ``encode(_:)-(SubscriptionRecord)``.
    /// - Parameter bytes: Exactly one encoded record.
    /// - Returns: The record.
    /// - Throws: ``ConveyorError/Code/storage`` naming what is wrong when the bytes are truncated or corrupt.
    package static func decodeSubscription(_ bytes: UnsafeRawBufferPointer) throws(ConveyorError) -> SubscriptionRecord {
        var reader = Reader(bytes, what: "subscription record")
        try reader.version()
        let flags = try reader.byte("flags")
        guard flags & ~0x0F == 0 else { throw reader.corrupt("unknown flags \(flags)") }
        let clientID = flags & 1 != 0 ? try reader.string("client ID") : nil
        let name = try reader.string("name")
        let topic = try reader.string("topic")
        let selector = flags & 2 != 0 ? try reader.string("selector") : nil
        try reader.finish()
        return SubscriptionRecord(
            key: SubscriptionKey(clientID: clientID, name: name), topic: topic, selector: selector,
            noLocal: flags & 4 != 0, isShared: flags & 8 != 0)
    }

    /// Decodes a subscription record from an array.
    /// - Parameter bytes: Exactly one encoded record.
    /// - Returns: The record.
    /// - Throws: ``ConveyorError/Code/storage`` when the bytes are truncated or corrupt.
    package static func decodeSubscription(_ bytes: [UInt8]) throws(ConveyorError) -> SubscriptionRecord {
        try bytes.withUnsafeBytes { raw in Result { () throws(ConveyorError) in try decodeSubscription(raw) } }.get()
    }

    // MARK: Queue key

    /// Encodes a queue or subscription key unambiguously (`"a:b"` + `"c"` and `"a"` + `"b:c"`, a
    /// missing and an empty client ID, all encode differently).
    /// - Parameter key: The key.
    /// - Returns: The encoded bytes.
    package static func encode(_ key: StoreQueueKey) -> [UInt8] {
        var writer = Writer(buffer: [])
        writer.byte(formatVersion)
        switch key {
        case .queue(let name):
            writer.byte(0)
            writer.string(name)
        case .subscription(let subscription):
            if let clientID = subscription.clientID {
                writer.byte(2)
                writer.string(clientID)
            } else {
                writer.byte(1)
            }
            writer.string(subscription.name)
        }
        return writer.buffer
    }

    /// Decodes a queue key written by ``encode(_:)-(StoreQueueKey)``.
    /// - Parameter bytes: Exactly one encoded key.
    /// - Returns: The key.
    /// - Throws: ``ConveyorError/Code/storage`` when the bytes are truncated or corrupt.
    package static func decodeQueueKey(_ bytes: UnsafeRawBufferPointer) throws(ConveyorError) -> StoreQueueKey {
        var reader = Reader(bytes, what: "queue key")
        try reader.version()
        let kind = try reader.byte("kind")
        let key: StoreQueueKey
        switch kind {
        case 0: key = .queue(try reader.string("queue name"))
        case 1: key = .subscription(SubscriptionKey(clientID: nil, name: try reader.string("subscription name")))
        case 2:
            let clientID = try reader.string("client ID")
            key = .subscription(SubscriptionKey(clientID: clientID, name: try reader.string("subscription name")))
        default: throw reader.corrupt("unknown key kind \(kind)")
        }
        try reader.finish()
        return key
    }

    /// Decodes a queue key from an array.
    /// - Parameter bytes: Exactly one encoded key.
    /// - Returns: The key.
    /// - Throws: ``ConveyorError/Code/storage`` when the bytes are truncated or corrupt.
    package static func decodeQueueKey(_ bytes: [UInt8]) throws(ConveyorError) -> StoreQueueKey {
        try bytes.withUnsafeBytes { raw in Result { () throws(ConveyorError) in try decodeQueueKey(raw) } }.get()
    }

    // MARK: Tags

    private enum Flag {
        static let messageID: UInt8 = 1
        static let correlationID: UInt8 = 2
        static let replyTo: UInt8 = 4
        static let destination: UInt8 = 8
        static let type: UInt8 = 16
        static let redelivered: UInt8 = 32
        static let all: UInt8 = 63
    }

    private enum BodyKind {
        static let empty: UInt8 = 0
        static let text: UInt8 = 1
        static let bytes: UInt8 = 2
        static let map: UInt8 = 3
        static let stream: UInt8 = 4
        static let object: UInt8 = 5
    }

    private enum ValueTag {
        static let bool: UInt8 = 1
        static let int8: UInt8 = 2
        static let int16: UInt8 = 3
        static let int32: UInt8 = 4
        static let int64: UInt8 = 5
        static let float: UInt8 = 6
        static let double: UInt8 = 7
        static let string: UInt8 = 8
        static let bytes: UInt8 = 9
    }

    // MARK: Writer

    private struct Writer {
        var buffer: [UInt8]

        mutating func byte(_ value: UInt8) { buffer.append(value) }

        mutating func varint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            buffer.append(UInt8(value))
        }

        /// Zig-zag, so small negative numbers stay short.
        mutating func signed(_ value: Int64) {
            varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
        }

        mutating func fixed<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
        }

        mutating func string(_ value: String) {
            var value = value
            value.withUTF8 { utf8 in
                varint(UInt64(utf8.count))
                buffer.append(contentsOf: utf8)
            }
        }

        mutating func data(_ value: Data) {
            varint(UInt64(value.count))
            // Through the raw bytes: appending `Data` itself copies byte by byte.
            value.withUnsafeBytes { buffer.append(contentsOf: $0) }
        }

        mutating func destination(_ destination: Destination) {
            switch destination {
            case .queue(let queue):
                byte(queue.isTemporary ? 2 : 0)
                string(queue.name)
            case .topic(let topic):
                byte(topic.isTemporary ? 3 : 1)
                string(topic.name)
            }
        }

        mutating func value(_ value: MessageValue) {
            switch value {
            case .bool(let v):
                byte(ValueTag.bool)
                byte(v ? 1 : 0)
            case .int8(let v):
                byte(ValueTag.int8)
                byte(UInt8(bitPattern: v))
            case .int16(let v):
                byte(ValueTag.int16)
                fixed(v)
            case .int32(let v):
                byte(ValueTag.int32)
                fixed(v)
            case .int64(let v):
                byte(ValueTag.int64)
                fixed(v)
            case .float(let v):
                byte(ValueTag.float)
                fixed(v.bitPattern)
            case .double(let v):
                byte(ValueTag.double)
                fixed(v.bitPattern)
            case .string(let v):
                byte(ValueTag.string)
                string(v)
            case .bytes(let v):
                byte(ValueTag.bytes)
                data(v)
            }
        }
    }

    // MARK: Reader

    /// Reads an encoding. Field names are static strings, turned into text only for an error, so a
    /// successful decode allocates nothing but the strings, data and collections it returns.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let what: StaticString
        var offset = 0

        init(_ bytes: UnsafeRawBufferPointer, what: StaticString) {
            self.bytes = bytes
            self.what = what
        }

        var remaining: Int { bytes.count - offset }

        func corrupt(_ problem: String) -> ConveyorError {
            ConveyorError(.storage, "a stored \(what) is corrupt: \(problem) (at byte \(offset) of \(bytes.count))")
        }

        func truncated(_ field: StaticString, _ suffix: StaticString = "") -> ConveyorError {
            ConveyorError(
                .storage,
                "a stored \(what) is truncated: it ends in its \(field)\(suffix) (at byte \(offset) of \(bytes.count))")
        }

        mutating func version() throws(ConveyorError) {
            let version = try byte("format version")
            guard version == MessageCodec.formatVersion else {
                throw corrupt(
                    "format version \(version) is not supported (this build reads version \(MessageCodec.formatVersion); "
                        + "a newer Conveyor may have written it)")
            }
        }

        mutating func finish() throws(ConveyorError) {
            guard remaining == 0 else { throw corrupt("\(remaining) unexpected bytes after the end") }
        }

        mutating func byte(_ field: StaticString) throws(ConveyorError) -> UInt8 {
            guard offset < bytes.count else { throw truncated(field) }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint(_ field: StaticString, _ suffix: StaticString = "") throws(ConveyorError) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count else { throw truncated(field, suffix) }
                let byte = bytes[offset]
                offset += 1
                if shift == 63, byte > 1 { throw corrupt("the \(field)\(suffix) overflows 64 bits") }
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
                if shift > 63 { throw corrupt("the \(field)\(suffix) overflows 64 bits") }
            }
        }

        mutating func signed(_ field: StaticString) throws(ConveyorError) -> Int64 {
            let raw = try varint(field)
            return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
        }

        mutating func int(_ field: StaticString) throws(ConveyorError) -> Int {
            let value = try signed(field)
            guard let result = Int(exactly: value) else { throw corrupt("the \(field) \(value) is out of range") }
            return result
        }

        /// A count of elements that each take at least `minimumElementSize` bytes: bounded by what is
        /// left, so corrupt input cannot make us reserve a huge amount of memory.
        mutating func count(_ field: StaticString, minimumElementSize: Int) throws(ConveyorError) -> Int {
            let count = try varint(field, " count")
            guard count <= UInt64(remaining / minimumElementSize) else {
                throw corrupt("the \(field) count \(count) exceeds what the remaining \(remaining) bytes can hold")
            }
            return Int(count)
        }

        mutating func fixed<T: FixedWidthInteger>(_ field: StaticString, as: T.Type) throws(ConveyorError) -> T {
            let size = MemoryLayout<T>.size
            guard remaining >= size else { throw truncated(field) }
            defer { offset += size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func slice(_ field: StaticString) throws(ConveyorError) -> UnsafeRawBufferPointer {
            let length = try varint(field, " length")
            guard length <= UInt64(remaining) else { throw truncated(field) }
            let start = offset
            offset += Int(length)
            return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        }

        mutating func string(_ field: StaticString) throws(ConveyorError) -> String {
            let raw = try slice(field)
            if raw.isEmpty { return "" }
            guard let string = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
                throw corrupt("the \(field) is not valid UTF-8")
            }
            return string
        }

        mutating func data(_ field: StaticString) throws(ConveyorError) -> Data {
            let raw = try slice(field)
            return raw.isEmpty ? Data() : Data(raw)
        }

        mutating func destination(_ field: StaticString) throws(ConveyorError) -> Destination {
            let kind = try byte(field)
            let name = try string(field)
            switch kind {
            case 0: return .queue(Queue(name))
            case 1: return .topic(Topic(name))
            case 2: return .queue(Queue(temporaryName: name))
            case 3: return .topic(Topic(temporaryName: name))
            default: throw corrupt("unknown \(field) kind \(kind)")
            }
        }

        mutating func value(_ field: StaticString) throws(ConveyorError) -> MessageValue {
            let tag = try byte(field)
            switch tag {
            case ValueTag.bool:
                let raw = try byte(field)
                guard raw <= 1 else { throw corrupt("a \(field) boolean is \(raw)") }
                return .bool(raw == 1)
            case ValueTag.int8: return .int8(Int8(bitPattern: try byte(field)))
            case ValueTag.int16: return .int16(try fixed(field, as: Int16.self))
            case ValueTag.int32: return .int32(try fixed(field, as: Int32.self))
            case ValueTag.int64: return .int64(try fixed(field, as: Int64.self))
            case ValueTag.float: return .float(Float(bitPattern: try fixed(field, as: UInt32.self)))
            case ValueTag.double: return .double(Double(bitPattern: try fixed(field, as: UInt64.self)))
            case ValueTag.string: return .string(try string(field))
            case ValueTag.bytes: return .bytes(try data(field))
            default: throw corrupt("unknown \(field) type tag \(tag)")
            }
        }

        /// Properties or a map body: a count, then (name, value) pairs with distinct names.
        mutating func namedValues(_ field: StaticString) throws(ConveyorError) -> [String: MessageValue] {
            // Each entry takes at least a name length, a tag and one payload byte.
            let count = try count(field, minimumElementSize: 3)
            guard count > 0 else { return [:] }
            var values: [String: MessageValue] = [:]
            values.reserveCapacity(count)
            for _ in 0..<count {
                let name = try string(field)
                let value = try value(field)
                guard values.updateValue(value, forKey: name) == nil else {
                    throw corrupt("the \(field) hold '\(name)' twice")
                }
            }
            return values
        }
    }
}
