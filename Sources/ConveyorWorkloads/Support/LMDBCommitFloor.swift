import CLMDB
import Foundation

/// Measures how many durable LMDB write transactions per second the disk under `directory` takes:
/// a loop of commits that each put one 200-byte value and delete the previous one, on a fresh
/// environment with LMDB's default (synchronous) flags. That is the least a W2 step can cost the
/// LMDB store (a send's put and an acknowledgement's delete, one transaction), with none of the
/// broker's work: the ceiling W2 on LMDB is compared against, beside the fsync floor.
///
/// A synchronous LMDB commit flushes twice (the data pages with `fdatasync`, then the meta page),
/// so this ceiling sits well below the fsync floor.
enum LMDBCommitFloor {
    /// Commits per second over `iterations` transactions, or `nil` if the probe environment cannot
    /// be opened or written.
    static func measure(in directory: URL, iterations: Int = 400) -> Double? {
        let probe = directory.appendingPathComponent("lmdb-commit-probe")
        guard (try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(at: probe) }
        var environment: OpaquePointer?
        guard mdb_env_create(&environment) == 0, let environment else { return nil }
        defer { mdb_env_close(environment) }
        guard mdb_env_set_mapsize(environment, 64 << 20) == 0,
              mdb_env_open(environment, probe.path, 0, 0o644) == 0 else { return nil }
        var database: MDB_dbi = 0
        guard transact(environment, { mdb_dbi_open($0, nil, 0, &database) }) else { return nil }

        var body = [UInt8](repeating: 0xA5, count: 200)
        let start = ContinuousClock.now
        for index in 0..<UInt64(iterations) {
            let committed = transact(environment) { transaction in
                var key = index.bigEndian
                var previous = (index &- 1).bigEndian
                return withUnsafeMutableBytes(of: &key) { keyBytes in
                    body.withUnsafeMutableBytes { bodyBytes in
                        var keyValue = MDB_val(mv_size: 8, mv_data: keyBytes.baseAddress)
                        var bodyValue = MDB_val(mv_size: bodyBytes.count, mv_data: bodyBytes.baseAddress)
                        let put = mdb_put(transaction, database, &keyValue, &bodyValue, UInt32(MDB_APPEND))
                        guard put == 0, index > 0 else { return put }
                        return withUnsafeMutableBytes(of: &previous) { previousBytes in
                            var previousValue = MDB_val(mv_size: 8, mv_data: previousBytes.baseAddress)
                            return mdb_del(transaction, database, &previousValue, nil)
                        }
                    }
                }
            }
            guard committed else { return nil }
        }
        let elapsed = ContinuousClock.now - start
        return Double(iterations) / elapsed.seconds
    }

    /// Runs `body` in a write transaction and commits it.
    /// - Returns: Whether `body` returned 0 (success) and the commit succeeded.
    private static func transact(_ environment: OpaquePointer, _ body: (OpaquePointer) -> Int32) -> Bool {
        var transaction: OpaquePointer?
        guard mdb_txn_begin(environment, nil, 0, &transaction) == 0, let transaction else { return false }
        guard body(transaction) == 0 else {
            mdb_txn_abort(transaction)
            return false
        }
        return mdb_txn_commit(transaction) == 0
    }
}
