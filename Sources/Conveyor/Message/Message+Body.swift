import Foundation

extension Message {
    /// The body as `type`, JMS 2.0's `Message.getBody(Class)`: `nil` for a message without a body;
    /// otherwise the body if it can be returned as `type`.
    ///
    /// | body | types it is returned as |
    /// | --- | --- |
    /// | text | `String` |
    /// | bytes | `Data`, `[UInt8]` |
    /// | map | `[String: MessageValue]` |
    /// | object | any `Decodable` type its JSON decodes as, and `Data` (the JSON itself) |
    /// | stream | none: JMS returns no stream body this way (read ``stream``) |
    ///
    /// Every body is also returned as `Any` (an object's as its JSON `Data`).
    /// - Parameter type: The type the caller expects.
    /// - Throws: ``ConveyorError/Code/messageFormat`` naming the body's kind and `type` if the body
    ///   cannot be returned as `type` (always for a stream body, as in JMS).
    public func body<T>(as type: T.Type) throws(ConveyorError) -> T? {
        switch body {
        case .empty:
            return nil
        case .text(let text):
            if let value = text as? T { return value }
        case .bytes(let bytes):
            if let value = bytes as? T { return value }
            if let value = [UInt8](bytes) as? T { return value }
        case .map(let values):
            if let value = values as? T { return value }
        case .stream:
            throw .messageFormat("the message is a StreamMessage, whose body JMS does not return as one value; read `stream`")
        case .object(let data):
            if let value = data as? T { return value }
            if let decodable = T.self as? any Decodable.Type {
                do {
                    return try JSONDecoder().decode(decodable, from: data) as? T
                } catch {
                    throw ConveyorError(.messageFormat, "the ObjectMessage body does not decode as \(T.self)", underlying: error)
                }
            }
        }
        throw .messageFormat("the message is a \(body.kind), whose body cannot be returned as \(T.self)")
    }

    /// Whether ``body(as:)`` would return the body as `type`, JMS 2.0's
    /// `Message.isBodyAssignableTo(Class)`: `true` for a message without a body, `false` for a
    /// stream message, and for an object message whether its JSON decodes as `type`.
    /// - Parameter type: The type the caller asks about.
    public func isBodyAssignable<T>(to type: T.Type) -> Bool {
        if case .stream = body { return false }
        do {
            _ = try body(as: type)
            return true
        } catch {
            return false
        }
    }
}
