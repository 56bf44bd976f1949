/// How a session acknowledges the messages it receives (JMS acknowledge modes and transactions).
public enum SessionMode: Sendable, Hashable, CustomStringConvertible {
    /// Each message is acknowledged when `receive` returns it, or when its listener returns.
    case autoAcknowledge
    /// The application calls ``Message/acknowledge()``, which acknowledges every message the session
    /// has consumed so far; ``Session/recover()`` redelivers the unacknowledged ones.
    case clientAcknowledge
    /// Like ``autoAcknowledge``, but the broker may acknowledge lazily: duplicates are possible after
    /// a failure, in exchange for less work per message.
    case dupsOKAcknowledge
    /// Sends and receives are grouped into transactions ended by ``Session/commit()`` or
    /// ``Session/rollback()``.
    case transacted

    /// The JMS name of the mode.
    public var description: String {
        switch self {
        case .autoAcknowledge: "AUTO_ACKNOWLEDGE"
        case .clientAcknowledge: "CLIENT_ACKNOWLEDGE"
        case .dupsOKAcknowledge: "DUPS_OK_ACKNOWLEDGE"
        case .transacted: "SESSION_TRANSACTED"
        }
    }

    /// Whether a message is acknowledged as soon as the application has it.
    var acknowledgesOnDelivery: Bool { self == .autoAcknowledge || self == .dupsOKAcknowledge }
}
