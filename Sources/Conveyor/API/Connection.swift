import Logging
import Synchronization

/// An application's connection to a ``Broker``: the factory of sessions and the switch that starts
/// and stops delivery.
///
/// A new connection is stopped: consumers receive nothing until ``start()``, so that an application
/// can set everything up first. Closing the connection closes its sessions and deletes its temporary
/// destinations.
public final class Connection: Sendable {
    /// The client identifier, used to name durable subscriptions; `nil` when anonymous. Given to
    /// ``ConnectionFactory/createConnection(clientID:)`` or set once with ``setClientID(_:)``.
    public var clientID: String? { state.withLock { $0.clientID } }
    /// The broker this connection talks to.
    public let broker: Broker
    let id: UInt64

    private let started = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var clientID: String?
        /// Whether the client ID can no longer be set: it was given, or the connection was used.
        var isIdentityFixed = false
        var isClosed = false
        var sessions: [Session] = []
        var exceptionListener: (@Sendable (ConveyorError) -> Void)?
    }

    init(broker: Broker, clientID: String?) throws(ConveyorError) {
        if let clientID { try Self.validate(clientID) }
        self.broker = broker
        self.id = broker.makeConnectionID()
        state.withLock { state in
            state.clientID = clientID
            state.isIdentityFixed = clientID != nil
        }
        try broker.register(self)
    }

    private static func validate(_ clientID: String) throws(ConveyorError) {
        if clientID.isEmpty || clientID.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ConveyorError(.invalidClientID, "the client ID '\(clientID.debugDescription)' must be non-empty text without control characters")
        }
    }

    /// Sets the client identifier of a connection created without one (JMS `setClientID`).
    ///
    /// Allowed once, right after the connection is created: before it creates a session, starts,
    /// stops or makes a temporary destination.
    /// - Parameter clientID: The identifier; unique among the broker's open connections.
    /// - Throws: ``ConveyorError/Code/invalidClientID`` if it is empty, has control characters or is
    ///   in use by another open connection; ``ConveyorError/Code/illegalState`` if the connection
    ///   already has a client ID, has been used, or is closed.
    public func setClientID(_ clientID: String) throws(ConveyorError) {
        try Self.validate(clientID)
        try state.withLock { (state) throws(ConveyorError) in
            if state.isClosed { throw .closed("connection") }
            if let current = state.clientID {
                throw .illegalState("this connection already has the client ID '\(current)'; a client ID is set once")
            }
            if state.isIdentityFixed {
                throw .illegalState("set the client ID right after creating the connection, before it is used (a session, start, stop or a temporary destination came first)")
            }
            try broker.claimClientID(clientID)
            state.clientID = clientID
            state.isIdentityFixed = true
        }
    }

    /// Who sends through this connection, for `noLocal` (sessions keep a copy: the client ID
    /// cannot change once a session exists).
    var publisher: Publisher { Publisher(connectionID: id, clientID: clientID) }

    /// Whether delivery is running.
    public var isStarted: Bool { started.load(ordering: .acquiring) }

    /// The provider's name and versions and the `JMSX` properties it supports (JMS `getMetaData()`).
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed.
    public func metaData() throws(ConveyorError) -> ConnectionMetaData {
        if isClosed { throw .closed("connection") }
        return ConnectionMetaData()
    }

    /// Whether the connection has been closed.
    public var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Starts (or resumes) delivery to the consumers of every session. Starting twice does nothing.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed.
    public func start() throws(ConveyorError) {
        let sessions = try openSessions()
        started.store(true, ordering: .releasing)
        for session in sessions { session.connectionStarted() }
    }

    /// Pauses delivery: receives wait and listeners are not called until ``start()``. Messages stay
    /// where they are.
    ///
    /// Blocks until the listeners in progress have returned: once it returns, no listener of the
    /// connection runs until ``start()``.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed, or if called from
    ///   one of its message listeners (it would wait for that listener, that is for itself).
    public func stop() throws(ConveyorError) {
        _ = try openSessions()
        if let call = ListenerCall.current, call.session.connection === self, call.session.isInProgress(call) {
            throw .illegalState("stop() cannot be called from a message listener of its own connection: it waits for the listeners in progress to return")
        }
        started.store(false, ordering: .releasing)
        // The sessions as of now: one created meanwhile sees the connection stopped.
        for session in state.withLock({ $0.sessions }) { session.waitForListenerCall() }
    }

    /// Closes every session (rolling back open transactions and returning unacknowledged messages),
    /// deletes temporary destinations and releases the client ID. Closing twice does nothing.
    ///
    /// Blocks until the message listeners in progress have returned; none is called afterwards.
    /// Called from a listener of this connection, it waits for the others but not for that one,
    /// whose message is still acknowledged when it returns in an auto mode.
    public func close() {
        let sessions = state.withLock { state -> [Session]? in
            guard !state.isClosed else { return nil }
            state.isClosed = true
            return state.sessions
        }
        guard let sessions else { return }
        started.store(false, ordering: .releasing)
        for session in sessions { session.close() }
        broker.unregister(self)
    }

    /// Creates a session.
    /// - Parameter mode: The acknowledge mode, or ``SessionMode/transacted``.
    /// - Returns: A new session.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed.
    public func createSession(_ mode: SessionMode = .autoAcknowledge) throws(ConveyorError) -> Session {
        try state.withLock { (state) throws(ConveyorError) -> Session in
            if state.isClosed { throw .closed("connection") }
            state.isIdentityFixed = true
            let session = Session(connection: self, mode: mode, publisher: Publisher(connectionID: id, clientID: state.clientID))
            state.sessions.append(session)
            return session
        }
    }

    /// Sets the handler told about failures that no call can report, such as a store error while
    /// acknowledging a message for a listener. `nil` removes it.
    /// - Parameter listener: Called with the error, on an unspecified thread.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed (JMS: a closed
    ///   connection refuses every call but `close`).
    public func setExceptionListener(_ listener: (@Sendable (ConveyorError) -> Void)?) throws(ConveyorError) {
        try state.withLock { (state) throws(ConveyorError) in
            if state.isClosed { throw .closed("connection") }
            state.exceptionListener = listener
        }
    }

    /// Deletes a durable subscription of this connection's client and its messages.
    /// - Parameter name: The subscription name.
    /// - Throws: ``ConveyorError/Code/invalidDestination`` if there is no such subscription,
    ///   ``ConveyorError/Code/illegalState`` while a consumer is open on it, while a message it delivered
    ///   is unacknowledged or part of an uncommitted transaction (JMS), or if the connection is closed.
    public func unsubscribe(_ name: String) async throws(ConveyorError) {
        _ = try openSessions()
        try await broker.unsubscribe(SubscriptionKey(clientID: clientID, name: name))
    }

    /// Creates a temporary queue that lives as long as this connection; only this connection may
    /// consume from it. Typical use: the `replyTo` of a request.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed.
    public func createTemporaryQueue() throws(ConveyorError) -> Queue {
        _ = try openSessions()
        return try broker.createTemporaryQueue(owner: id)
    }

    /// Creates a temporary topic that lives as long as this connection.
    /// - Throws: ``ConveyorError/Code/illegalState`` if the connection is closed.
    public func createTemporaryTopic() throws(ConveyorError) -> Topic {
        _ = try openSessions()
        return try broker.createTemporaryTopic(owner: id)
    }

    /// Deletes a temporary queue or topic this connection created.
    /// - Parameter destination: The temporary destination.
    /// - Throws: ``ConveyorError/Code/illegalState`` while consumers use it;
    ///   ``ConveyorError/Code/invalidDestination`` if it is not one of this connection's.
    public func deleteTemporary(_ destination: Destination) throws(ConveyorError) {
        _ = try openSessions()
        try broker.deleteTemporary(destination, owner: id)
    }

    func report(_ error: ConveyorError) {
        let listener = state.withLock { $0.exceptionListener }
        if let listener {
            listener(error)
        } else {
            broker.logger.error("unreported connection error: \(error)")
        }
    }

    func sessionClosed(_ session: Session) {
        state.withLock { $0.sessions.removeAll { $0 === session } }
    }

    private func openSessions() throws(ConveyorError) -> [Session] {
        try state.withLock { (state) throws(ConveyorError) -> [Session] in
            if state.isClosed { throw .closed("connection") }
            state.isIdentityFixed = true
            return state.sessions
        }
    }
}
