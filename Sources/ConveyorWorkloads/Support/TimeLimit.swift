import Conveyor
import Synchronization

/// Runs a workload's body with a time limit: when the limit passes, the connection is closed, which
/// wakes every waiting receive with `nil` and makes further sends fail, and the run fails with
/// ``WorkloadError/Code/timedOut`` instead of hanging.
///
/// Waits use plain `receive()` so that no per-receive timer is created on the hot path.
func withTimeLimit<Result: Sendable>(
    _ limit: Duration, of id: WorkloadID, closing connection: Connection,
    _ body: () async throws -> Result
) async throws -> Result {
    let expired = Flag()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            try await Task.sleep(for: limit)
            expired.set()
            connection.close()
        }
        defer { group.cancelAll() }
        do {
            return try await body()
        } catch {
            if expired.isSet {
                throw WorkloadError(.timedOut, "workload \(id) did not finish within \(limit)", underlying: error)
            }
            throw error
        }
    }
}

/// A flag set once, from any task.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }
}
