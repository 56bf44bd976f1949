import CLMDB

/// The named databases of an LMDB store, opened once when the environment opens.
///
/// Layout (schema version 1); integers in keys are big-endian so that keys sort numerically:
///
/// | database | key | value |
/// | --- | --- | --- |
/// | `bodies` | sequence (u64) | the message (``MessageCodec``), stored once however many references it has |
/// | `refcounts` | sequence (u64) | reference count (u32 LE), present only when above 1 |
/// | `references` | destination ID (u64) ‖ sequence (u64) | delivery count (u32 LE) ‖ body bytes (u32 LE) |
/// | `destinations` | destination ID (u64) | the queue or subscription key (``MessageCodec``) |
/// | `subscriptions` | destination ID (u64) | the subscription record (``MessageCodec``) |
/// | `metadata` | ASCII name | `schema` (u32 LE), `highestSequence` (u64 LE), `foldedDeliveries` (u64 LE) |
/// | `statistics` | destination ID (u64) | kept counters: enqueued, dequeued, expired, dead-lettered, dropped (u64 LE each) |
/// | `statisticsFolds` | group ID (u64) ‖ member ID (u64) | empty: that member's counters are in `statistics` |
///
/// Queues and subscriptions get a numeric destination ID the first time they are used, and keep it
/// forever (IDs are never reused). References are therefore fixed 16-byte keys whatever the length
/// of a name or client ID (LMDB keys are limited to 511 bytes), sort by queue then sequence (a queue
/// is one contiguous, ordered range: purging is a range walk, and a broker can page a queue's
/// messages in order), and never collide between look-alike names. Because IDs only grow and are
/// assigned inside write transactions, several processes sharing the directory (LMDB serialises
/// their writers) agree on them.
///
/// Reference counts live apart from bodies so that acknowledging one of several references never
/// rewrites a large body (LMDB copies a page on every change), and a single-reference message (the
/// common, queue case) costs no count entry at all.
///
/// `foldedDeliveries` is the generation of the delivery log (``DeliveryLog``) whose records, and
/// older ones, are in `references`; a store that never logged has none (read as 0). Like the
/// statistics databases it came without a new schema version: a build that does not know it
/// ignores it, and the log files beside it, and only loses the redelivered flags of the counts a
/// crashed single-process store had logged and not folded.
///
/// `statistics` and `statisticsFolds` hold the counters of a store shared by processes (see
/// ``LMDBStore/shareStatistics(_:)``). They were added without a new schema version: a store
/// without them simply has no counters kept yet, and they are created when it opens.
struct LMDBDatabases {
    var bodies: MDB_dbi = 0
    var refcounts: MDB_dbi = 0
    var references: MDB_dbi = 0
    var destinations: MDB_dbi = 0
    var subscriptions: MDB_dbi = 0
    var metadata: MDB_dbi = 0
    var statistics: MDB_dbi = 0
    var statisticsFolds: MDB_dbi = 0

    /// How many named databases the schema uses (`mdb_env_set_maxdbs`), with room to grow.
    static let maximumCount: UInt32 = 16

    /// The schema version this build writes and reads.
    static let schemaVersion: UInt32 = 1

    /// Handles not opened yet (all zero).
    init() {}

    /// Opens (creating if needed) every database in a write transaction.
    init(opening transaction: LMDBTransaction) throws(LMDBError) {
        bodies = try Self.open("bodies", in: transaction)
        refcounts = try Self.open("refcounts", in: transaction)
        references = try Self.open("references", in: transaction)
        destinations = try Self.open("destinations", in: transaction)
        subscriptions = try Self.open("subscriptions", in: transaction)
        metadata = try Self.open("metadata", in: transaction)
        statistics = try Self.open("statistics", in: transaction)
        statisticsFolds = try Self.open("statisticsFolds", in: transaction)
    }

    private static func open(_ name: String, in transaction: LMDBTransaction) throws(LMDBError) -> MDB_dbi {
        var database: MDB_dbi = 0
        try check(mdb_dbi_open(transaction.handle, name, UInt32(MDB_CREATE), &database), "mdb_dbi_open")
        return database
    }
}

/// Keys of the `metadata` database.
enum MetadataKey {
    static let schema: StaticString = "schema"
    static let highestSequence: StaticString = "highestSequence"
    static let foldedDeliveries: StaticString = "foldedDeliveries"
    /// The last ``CommitLog`` epoch whose records are in the database (absent: none).
    static let checkpointedCommits: StaticString = "checkpointedCommits"
}
