import Foundation

/// A point-to-point destination: each message is delivered to exactly one consumer.
///
/// Temporary queues, created with ``Connection/createTemporaryQueue()``, are ordinary queues whose
/// ``isTemporary`` flag is set: they live as long as the connection that created it and only that
/// connection may consume from them.
public struct Queue: Hashable, Sendable, CustomStringConvertible {
    /// The queue's name, unique among queues of a broker.
    public let name: String
    /// Whether this is a temporary queue owned by one connection.
    public let isTemporary: Bool

    /// Names a queue. The name is checked when the queue is first used.
    /// - Parameter name: 1 to 255 characters, no control characters, not starting with `temp-`.
    public init(_ name: String) {
        self.name = name
        self.isTemporary = false
    }

    init(temporaryName: String) {
        self.name = temporaryName
        self.isTemporary = true
    }

    /// `queue://<name>`.
    public var description: String { "queue://\(name)" }
}

/// A publish/subscribe destination: each message is delivered to every subscription once.
///
/// Temporary topics, created with ``Connection/createTemporaryTopic()``, have ``isTemporary`` set
/// and live as long as the connection that created them.
public struct Topic: Hashable, Sendable, CustomStringConvertible {
    /// The topic's name, unique among topics of a broker.
    public let name: String
    /// Whether this is a temporary topic owned by one connection.
    public let isTemporary: Bool

    /// Names a topic. The name is checked when the topic is first used.
    /// - Parameter name: 1 to 255 characters, no control characters, not starting with `temp-`.
    public init(_ name: String) {
        self.name = name
        self.isTemporary = false
    }

    init(temporaryName: String) {
        self.name = temporaryName
        self.isTemporary = true
    }

    /// `topic://<name>`.
    public var description: String { "topic://\(name)" }
}

/// Where a message is sent: a queue or a topic.
public enum Destination: Hashable, Sendable, CustomStringConvertible {
    /// A point-to-point queue.
    case queue(Queue)
    /// A publish/subscribe topic.
    case topic(Topic)

    /// The destination's name, without the scheme.
    public var name: String {
        switch self {
        case .queue(let queue): queue.name
        case .topic(let topic): topic.name
        }
    }

    /// Whether the destination is a temporary queue or topic.
    public var isTemporary: Bool {
        switch self {
        case .queue(let queue): queue.isTemporary
        case .topic(let topic): topic.isTemporary
        }
    }

    /// `queue://name` or `topic://name`.
    public var description: String {
        switch self {
        case .queue(let queue): queue.description
        case .topic(let topic): topic.description
        }
    }

    /// Parses `queue://name` or `topic://name`; a bare name is a queue.
    /// - Parameter string: The text to parse.
    /// - Throws: ``ConveyorError/Code/invalidDestination`` for an unknown scheme or an invalid name.
    public init(parsing string: String) throws(ConveyorError) {
        if let range = string.range(of: "://") {
            let scheme = string[..<range.lowerBound].lowercased()
            let name = String(string[range.upperBound...])
            switch scheme {
            case "queue": self = .queue(Queue(name))
            case "topic": self = .topic(Topic(name))
            default:
                throw .invalidDestination(
                    "unknown destination scheme '\(scheme)://' in '\(string)'; use queue://NAME or topic://NAME")
            }
        } else {
            self = .queue(Queue(string))
        }
        try DestinationName.validate(name)
    }
}

/// The rules every destination and subscription name obeys.
enum DestinationName {
    static let maximumLength = 255

    static func validate(_ name: String, what: String = "destination name") throws(ConveyorError) {
        if name.isEmpty {
            throw .invalidDestination("the \(what) is empty; give a name of 1 to \(maximumLength) characters")
        }
        if name.utf8.count > maximumLength {
            throw .invalidDestination(
                "the \(what) '\(name.prefix(40))…' is \(name.utf8.count) bytes long; the limit is \(maximumLength)")
        }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .invalidDestination("the \(what) '\(name.debugDescription)' contains a control character")
        }
    }
}
