import Conveyor

/// Sends `count` copies of `message` in transactions of `batch` sends each.
func sendInTransactions(_ message: Message, count: Int, batch: Int, producer: MessageProducer, session: Session) async throws {
    var inBatch = 0
    for _ in 0..<count {
        try await producer.send(message)
        inBatch += 1
        if inBatch == batch {
            try await session.commit()
            inBatch = 0
        }
    }
    if inBatch > 0 { try await session.commit() }
}

/// Receives `count` messages, committing every `batch` receives.
/// - Throws: ``WorkloadError`` if the consumer stops before `count`.
func receiveInTransactions(count: Int, batch: Int, consumer: MessageConsumer, session: Session, workload: WorkloadID) async throws {
    var inBatch = 0
    for received in 0..<count {
        guard try await consumer.receive() != nil else {
            throw WorkloadError(.incomplete, "\(workload): the consumer stopped after \(received) of \(count) messages")
        }
        inBatch += 1
        if inBatch == batch {
            try await session.commit()
            inBatch = 0
        }
    }
    if inBatch > 0 { try await session.commit() }
}
