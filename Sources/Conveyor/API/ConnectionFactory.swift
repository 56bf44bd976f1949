/// Creates connections to a broker: the JMS entry point.
public struct ConnectionFactory: Sendable {
    /// The broker connections of this factory talk to.
    public let broker: Broker

    /// Creates a factory for `broker`.
    /// - Parameter broker: An open broker.
    public init(broker: Broker) {
        self.broker = broker
    }

    /// Opens a connection. It delivers nothing until ``Connection/start()``.
    /// - Parameter clientID: Identifies the client for durable subscriptions; unique among the
    ///   broker's open connections. `nil` leaves the connection anonymous.
    /// - Returns: A stopped connection.
    /// - Throws: ``ConveyorError/Code/invalidClientID`` if the identifier is empty, malformed or in use;
    ///   ``ConveyorError/Code/illegalState`` if the broker is closed.
    public func createConnection(clientID: String? = nil) throws(ConveyorError) -> Connection {
        try Connection(broker: broker, clientID: clientID)
    }
}
