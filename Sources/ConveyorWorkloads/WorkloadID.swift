/// The standard workloads of `WORKLOADS.md`, by their short identifier.
///
/// Every workload has an identifier here, whether or not it is implemented yet, so that tools can
/// name it, list it and say clearly that it cannot run. ``workload`` returns the default-configured
/// implementation, or `nil` for one that is not implemented.
public enum WorkloadID: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Queue, 1 producer and 1 consumer, 200,000 non-persistent messages, auto-acknowledge.
    case w1 = "W1"
    /// Queue, 20,000 persistent messages, each send durable before it returns.
    case w2 = "W2"
    /// Queue, 200,000 persistent messages in transacted batches of 100 on both sides.
    case w3 = "W3"
    /// Topic, 1 publisher and 4 non-durable subscribers, 100,000 non-persistent messages.
    case w4 = "W4"
    /// Topic, persistent transacted publishing to 2 durable subscribers, 100,000 messages.
    case w5 = "W5"
    /// A backlog of 200,000 persistent messages: reopening the store, then draining it.
    case w6 = "W6"
    /// Request/reply over a temporary queue: latency percentiles of 20,000 round trips.
    case l1 = "L1"
    /// Memory held by a backlog of 1,000,000 persistent 1 KiB messages.
    case m1 = "M1"
    /// Producer and consumer in two processes on one store directory.
    case x1 = "X1"

    /// The identifier as written in `WORKLOADS.md`, for example `W1`.
    public var description: String { rawValue }

    /// The workload's short name, for example `queue-transient`.
    public var name: String {
        switch self {
        case .w1: "queue-transient"
        case .w2: "queue-persistent-sync"
        case .w3: "queue-persistent-batched"
        case .w4: "topic-fanout"
        case .w5: "durable-subscriptions"
        case .w6: "backlog-recovery"
        case .l1: "request-reply latency"
        case .m1: "backlog memory"
        case .x1: "cross-process"
        }
    }

    /// The workload with its standard parameters, or `nil` if it is not implemented yet.
    public var workload: (any Workload)? { workload(scaledBy: 1) }

    /// The workload with its message counts multiplied by `scale` (at least one message each) and
    /// its other parameters standard: a quick, smaller run of the same shape (`conveyor bench
    /// --scale 0.01`). Results of a scaled run are not comparable with the standard figures.
    /// - Parameter scale: The factor, above zero; 1 for the standard workload.
    public func workload(scaledBy scale: Double) -> (any Workload)? {
        func scaled(_ count: Int) -> Int { max(1, Int((Double(count) * scale).rounded())) }
        var workload: any Workload = switch self {
        case .w1: QueueTransientWorkload()
        case .w2: QueuePersistentSyncWorkload()
        case .w3: QueuePersistentBatchedWorkload()
        case .w4: TopicFanoutWorkload()
        case .w5: DurableSubscriptionsWorkload()
        case .w6: BacklogRecoveryWorkload()
        case .l1: RequestReplyWorkload()
        case .m1: BacklogMemoryWorkload()
        case .x1: CrossProcessWorkload()
        }
        guard scale != 1 else { return workload }
        workload.messages = scaled(workload.messages)
        // The counts some workloads send besides the measured ones.
        if var requestReply = workload as? RequestReplyWorkload {
            requestReply.warmUp = scaled(requestReply.warmUp)
            workload = requestReply
        } else if var crossProcess = workload as? CrossProcessWorkload {
            crossProcess.pacedMessages = scaled(crossProcess.pacedMessages)
            workload = crossProcess
        }
        return workload
    }

    /// Whether the workload can be run.
    public var isImplemented: Bool { workload != nil }

    /// The workloads that can be run, in the order of `WORKLOADS.md`.
    public static var implemented: [WorkloadID] { allCases.filter(\.isImplemented) }

    /// Looks up an identifier, ignoring case and surrounding spaces (`w1`, ` W1 `).
    /// - Parameter text: The identifier as a person typed it.
    /// - Returns: The identifier, or `nil` if there is no such workload.
    public init?(parsing text: String) {
        guard let id = WorkloadID(rawValue: String(text.filter { !$0.isWhitespace }).uppercased()) else {
            return nil
        }
        self = id
    }
}
