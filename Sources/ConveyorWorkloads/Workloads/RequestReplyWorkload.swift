import Conveyor
import Foundation

/// L1, request-reply latency: a requester task sends a request whose `replyTo` is a temporary
/// queue and waits for the reply; a responder task answers each request on its `replyTo`, with the
/// request's message ID as the reply's correlation ID. Non-persistent bytes messages.
///
/// Each round trip is timed from right before the request is sent to right after its reply is
/// received. After the warm-up round trips, the measured ones give the percentiles, and the rate
/// is measured round trips per second.
public struct RequestReplyWorkload: Workload {
    /// ``WorkloadID/l1``.
    public var id: WorkloadID { .l1 }
    /// How many round trips are measured; 20,000 in the standard workload.
    public var messages: Int
    /// How many round trips run first, unmeasured; 2,000 in the standard workload.
    public var warmUp: Int
    /// The size of each request's and reply's body; 128 in the standard workload.
    public var bodySize: Int
    /// How long a run may take before it fails with ``WorkloadError/Code/timedOut``.
    public var timeLimit: Duration

    /// `round-trips/s`.
    public var unit: String { "round-trips/s" }

    /// Creates the workload; the defaults are the standard L1.
    /// - Parameters:
    ///   - messages: How many round trips to measure; at least 1.
    ///   - warmUp: How many round trips to run before measuring.
    ///   - bodySize: Bytes per message body.
    ///   - timeLimit: The longest a run may take.
    public init(messages: Int = 20_000, warmUp: Int = 2_000, bodySize: Int = 128, timeLimit: Duration = .seconds(300)) {
        self.messages = messages
        self.warmUp = warmUp
        self.bodySize = bodySize
        self.timeLimit = timeLimit
    }

    /// Runs L1 once on `store`.
    /// - Parameter store: A fresh store for this run.
    /// - Returns: The measured round trips, their total time and their latency percentiles.
    /// - Throws: ``WorkloadError`` if a reply was lost or carried the wrong correlation ID, or the
    ///   time limit passed; ``ConveyorError`` from the broker.
    public func run(at location: StoreLocation) async throws -> WorkloadMeasurement {
        guard messages >= 1, warmUp >= 0 else {
            throw WorkloadError(.invalidParameter, "L1 needs at least 1 measured round trip and no negative warm-up")
        }
        let broker = try Broker(store: location.open())
        defer { broker.close() }
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let requests = Destination.queue(Queue("conveyor.bench.l1.requests"))
        let replies = Destination.queue(try connection.createTemporaryQueue())

        let responderSession = try connection.createSession(.autoAcknowledge)
        let incoming = try responderSession.createConsumer(for: requests)
        let responder = try responderSession.createProducer()
        let requesterSession = try connection.createSession(.autoAcknowledge)
        let requester = try requesterSession.createProducer(for: requests)
        let answers = try requesterSession.createConsumer(for: replies)
        try connection.start()

        let body = Data.random(count: bodySize)
        let request = {
            var request = Message.bytes(body)
            request.replyTo = replies
            return request
        }()
        let reply = Message.bytes(body)
        let (warmUp, measured) = (self.warmUp, messages)
        let total = warmUp + measured

        return try await withTimeLimit(timeLimit, of: id, closing: connection) {
            try await withThrowingTaskGroup(of: WorkloadMeasurement?.self) { group in
                group.addTask {
                    try await Self.respond(to: total, from: incoming, with: responder, reply: reply)
                    return nil
                }
                group.addTask {
                    var latencies: [Duration] = []
                    latencies.reserveCapacity(measured)
                    var measuredStart = ContinuousClock.now
                    for index in 0..<total {
                        if index == warmUp { measuredStart = .now }
                        let sentAt = ContinuousClock.now
                        let sent = try await requester.send(request, options: .nonPersistent)
                        guard let answer = try await answers.receive() else {
                            throw WorkloadError(.incomplete, "L1: no reply to request \(index + 1) of \(total)")
                        }
                        let receivedAt = ContinuousClock.now
                        guard let sentID = sent.messageID, answer.correlationID == sentID.description else {
                            throw WorkloadError(
                                .unexpectedMessage,
                                "L1: the reply to \(sent.messageID.map(String.init(describing:)) ?? "a request") carries correlation ID \(answer.correlationID ?? "nil")")
                        }
                        if index >= warmUp { latencies.append(receivedAt - sentAt) }
                    }
                    let elapsed = ContinuousClock.now - measuredStart
                    return WorkloadMeasurement(
                        count: measured, elapsed: elapsed, latency: LatencyPercentiles(samples: latencies))
                }
                var result: WorkloadMeasurement?
                for try await measurement in group {
                    if let measurement { result = measurement }
                }
                guard let result else { preconditionFailure("the requester task reports the measurement") }
                return result
            }
        }
    }

    /// The responder: answers `count` requests, each on its `replyTo`, correlated by message ID.
    private static func respond(
        to count: Int, from incoming: MessageConsumer, with producer: MessageProducer, reply template: Message
    ) async throws {
        for index in 0..<count {
            guard let request = try await incoming.receive() else {
                throw WorkloadError(.incomplete, "L1: the responder stopped after \(index) of \(count) requests")
            }
            guard let replyTo = request.replyTo, let requestID = request.messageID else {
                throw WorkloadError(.unexpectedMessage, "L1: request \(index + 1) has no replyTo or message ID")
            }
            var reply = template
            reply.correlationID = requestID.description
            try await producer.send(reply, to: replyTo, options: .nonPersistent)
        }
    }
}
