/// A ``StoreBatch`` with the messages it adds already encoded (``MessageCodec``).
///
/// A disk store encodes a batch on the committer's own thread, before the batch joins a
/// ``GroupCommit``: the committers of a group then encode in parallel, and the group's leader,
/// whose work every committer of the group waits for, only copies bytes.
package struct EncodedBatch: Sendable {
    /// The changes.
    package let batch: StoreBatch
    /// The encoding of each message the batch adds, in the order of its `add` operations (the
    /// slices share one buffer).
    package let messages: [ArraySlice<UInt8>]

    /// Encodes the messages `batch` adds.
    /// - Parameter batch: The changes.
    package init(_ batch: StoreBatch) {
        var buffer: [UInt8] = []
        var ends: [Int] = []
        var estimate = 0
        for operation in batch.operations {
            if case .add(let stored) = operation { estimate += MessageCodec.estimatedSize(of: stored.message) }
        }
        buffer.reserveCapacity(estimate)
        for operation in batch.operations {
            guard case .add(let stored) = operation else { continue }
            MessageCodec.encode(stored.message, into: &buffer)
            ends.append(buffer.count)
        }
        var start = 0
        var messages: [ArraySlice<UInt8>] = []
        messages.reserveCapacity(ends.count)
        for end in ends {
            messages.append(buffer[start..<end])
            start = end
        }
        self.batch = batch
        self.messages = messages
    }
}
