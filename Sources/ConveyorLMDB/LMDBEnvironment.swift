import CLMDB
import Conveyor
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open LMDB environment (one store directory) with its databases.
///
/// Not thread-safe on its own: ``LMDBStore`` keeps it inside a `Mutex` and runs every write
/// transaction under that lock, which is also what makes growing the map safe (LMDB allows
/// `mdb_env_set_mapsize` only while no transaction of the process is active). Opened with
/// `MDB_NOTLS`, so read transactions are not tied to the thread that began them.
///
/// The one exception is a page read that runs its read transaction without the store's lock
/// (``beginUnlockedRead()``): LMDB lets read transactions run beside a write, and growing the
/// map and closing wait until such reads have ended. Being `Sendable` also lets code running
/// under the lock pass the environment along with values of the caller (a claim's filter) without
/// the compiler tying the lock's state to the caller's region.
final class LMDBEnvironment: @unchecked Sendable {
    /// The canonical store directory, for error messages.
    let path: String
    private let handle: OpaquePointer
    /// The schema's databases; valid once ``open(path:options:)`` returns.
    private(set) var databases = LMDBDatabases()
    /// The current map size in bytes.
    private(set) var mapSize: Int
    private let maximumMapSize: Int
    private var isClosed = false
    /// Read transactions running without the store's lock (see ``beginUnlockedRead()``).
    private let unlockedReads = Atomic(0)
    /// Called when a map growth or a close starts waiting for them (a test hook).
    private var onWaitForUnlockedReads: (@Sendable () -> Void)?

    private init(path: String, handle: OpaquePointer, mapSize: Int, maximumMapSize: Int) {
        self.path = path
        self.handle = handle
        self.mapSize = mapSize
        self.maximumMapSize = maximumMapSize
    }

    /// Opens the environment in an existing directory, opens (or creates) the databases and checks
    /// the schema version.
    /// - Parameters:
    ///   - path: The canonical directory path.
    ///   - options: The store's options.
    /// - Returns: The open environment.
    /// - Throws: ``ConveyorError/Code/storage`` naming the path and LMDB's explanation.
    static func open(path: String, options: LMDBStore.Options) throws(ConveyorError) -> LMDBEnvironment {
        var created: OpaquePointer?
        try storage(path, "open") { () throws(LMDBError) in try check(mdb_env_create(&created), "mdb_env_create") }
        guard let handle = created else {
            throw LMDBError(code: MDB_PANIC, operation: "mdb_env_create").storageError(path: path, action: "open")
        }
        let maximum = roundedMapSize(max(options.maximumMapSize, options.initialMapSize))
        var flags = UInt32(MDB_NOTLS)
        if options.durability == .osBuffered { flags |= UInt32(MDB_NOSYNC) }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(handle, LMDBDatabases.maximumCount), "mdb_env_set_maxdbs")
            try check(mdb_env_set_mapsize(handle, roundedMapSize(options.initialMapSize)), "mdb_env_set_mapsize")
            try check(mdb_env_open(handle, path, flags, 0o644), "mdb_env_open")
        } catch {
            mdb_env_close(handle)
            throw error.storageError(path: path, action: "open")
        }
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        let environment = LMDBEnvironment(path: path, handle: handle, mapSize: info.me_mapsize, maximumMapSize: maximum)
        environment.onWaitForUnlockedReads = options.onWaitForUnlockedReads
        do throws(ConveyorError) {
            let (databases, storedVersion) = try environment.write(action: "open") { (transaction) throws(LMDBError) in
                let databases = try LMDBDatabases(opening: transaction)
                let stored = try LMDBKey.with(MetadataKey.schema) { (key) throws(LMDBError) in
                    try transaction.get(databases.metadata, key).map { LMDBValue.read($0, as: UInt32.self) }
                }
                if stored == nil {
                    try LMDBKey.with(MetadataKey.schema) { (key) throws(LMDBError) in
                        try LMDBValue.with(LMDBDatabases.schemaVersion) { (value) throws(LMDBError) in
                            try transaction.put(databases.metadata, key, value)
                        }
                    }
                }
                return (databases, stored)
            }
            if let storedVersion, storedVersion != LMDBDatabases.schemaVersion {
                throw ConveyorError(
                    .storage,
                    "cannot open the LMDB store at '\(path)': its schema version is "
                        + "\(storedVersion.map(String.init) ?? "unreadable"), this build reads version "
                        + "\(LMDBDatabases.schemaVersion); open it with the Conveyor version that wrote it")
            }
            environment.databases = databases
        } catch {
            environment.close()
            throw error
        }
        return environment
    }

    /// Flushes (in the OS-buffered mode, where commits did not) and closes the environment.
    func close() {
        guard !isClosed else { return }
        waitForUnlockedReads()
        isClosed = true
        mdb_env_sync(handle, 1)
        mdb_env_close(handle)
    }

    deinit { close() }

    /// The ID of the last committed write transaction (`mdb_env_info`'s `me_last_txnid`).
    var lastTransactionID: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return Int(info.me_last_txnid)
    }

    /// How many more bytes the map can grow to hold, at least: the maximum map size less the pages
    /// the data file uses (pages freed inside it are not counted).
    var roomLeft: Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        return maximumMapSize - (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    /// Frees the reader slots left by dead processes (LMDB only notices them when asked), so that
    /// their stale snapshots no longer keep freed pages from being reused.
    func clearStaleReaders() {
        guard !isClosed else { return }
        var dead: Int32 = 0
        _ = mdb_reader_check(handle, &dead)
    }

    /// Counts a read that is about to run without the store's lock. Call it under the store's lock
    /// (so that no map growth or close is under way), then ``readUnlocked(_:)`` and
    /// ``endUnlockedRead()``; meanwhile growing the map and closing wait.
    func beginUnlockedRead() {
        unlockedReads.add(1, ordering: .acquiring)
    }

    /// Ends what ``beginUnlockedRead()`` began; needs no lock.
    func endUnlockedRead() {
        unlockedReads.subtract(1, ordering: .releasing)
    }

    /// Waits until the reads running without the store's lock have ended (they take no lock to
    /// end, so the caller may hold it).
    private func waitForUnlockedReads() {
        guard unlockedReads.load(ordering: .acquiring) > 0 else { return }
        onWaitForUnlockedReads?()
        while unlockedReads.load(ordering: .acquiring) > 0 { sched_yield() }
    }

    /// ``read(_:)`` for a read counted with ``beginUnlockedRead()``: it cannot adopt a map another
    /// process grew (that needs every transaction of this process ended), and returns `nil` then.
    func readUnlocked<R>(_ body: (LMDBTransaction) throws(any Error) -> R) throws(ConveyorError) -> R? {
        try read(adoptingResizedMap: false, body)
    }

    /// Runs `body` in a read-only transaction (a consistent snapshot).
    /// - Throws: ``ConveyorError/Code/storage`` for LMDB failures (naming the path) and whatever
    ///   ``ConveyorError`` the body throws.
    func read<R>(_ body: (LMDBTransaction) throws(any Error) -> R) throws(ConveyorError) -> R {
        // Only a read that does not adopt a resized map returns nil.
        try read(adoptingResizedMap: true, body)!
    }

    private func read<R>(adoptingResizedMap: Bool, _ body: (LMDBTransaction) throws(any Error) -> R) throws(ConveyorError) -> R? {
        while true {
            var transaction: OpaquePointer?
            let code = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &transaction)
            if code == MDB_MAP_RESIZED {
                guard adoptingResizedMap else { return nil }
                try adoptResizedMap()
                continue
            }
            guard code == MDB_SUCCESS, let transaction else {
                throw LMDBError(code: code, operation: "mdb_txn_begin").storageError(path: path, action: "read")
            }
            defer { mdb_txn_abort(transaction) }
            do {
                return try body(LMDBTransaction(handle: transaction))
            } catch let error as LMDBError {
                throw error.storageError(path: path, action: "read")
            } catch let error as ConveyorError {
                throw ConveyorError(error.code, "in the LMDB store at '\(path)': \(error.message)", underlying: error.underlying)
            } catch {
                throw ConveyorError(.storage, "cannot read the LMDB store at '\(path)'", underlying: error)
            }
        }
    }

    /// Runs `body` in a write transaction and commits it.
    ///
    /// When the map is full, the transaction is aborted (or, if the commit itself failed, already
    /// freed by LMDB), the map doubled up to the maximum size, and `body` run again from the start:
    /// `body` must therefore have no effect outside the transaction until this returns.
    /// - Parameters:
    ///   - action: What is being done, for error messages ("commit to", "open").
    ///   - syncsMeta: `false` commits with `MDB_NOMETASYNC`: the data pages are synced, the meta
    ///     page is written but synced only by the next durable commit, so a power loss may undo this
    ///     transaction but cannot damage the store. (Ignored when the environment never syncs.)
    ///   - body: The changes.
    /// - Returns: What `body` returned.
    /// - Throws: ``ConveyorError/Code/resourceAllocation`` when the map cannot grow any more, and
    ///   ``ConveyorError/Code/storage`` for any other failure; nothing of `body` is applied then.
    func write<R>(
        action: String = "commit to", syncsMeta: Bool = true, _ body: (LMDBTransaction) throws(LMDBError) -> R
    ) throws(ConveyorError) -> R {
        // Only one write transaction runs at a time (callers hold the store's lock), and the flag is
        // read when the transaction commits, so it can be switched for just this one.
        if !syncsMeta { mdb_env_set_flags(handle, UInt32(MDB_NOMETASYNC), 1) }
        defer { if !syncsMeta { mdb_env_set_flags(handle, UInt32(MDB_NOMETASYNC), 0) } }
        while true {
            var transaction: OpaquePointer?
            var code = mdb_txn_begin(handle, nil, 0, &transaction)
            if code == MDB_MAP_RESIZED {
                try adoptResizedMap()
                continue
            }
            guard code == MDB_SUCCESS, let transaction else {
                throw LMDBError(code: code, operation: "mdb_txn_begin").storageError(path: path, action: action)
            }
            let result: R
            do throws(LMDBError) {
                result = try body(LMDBTransaction(handle: transaction))
            } catch {
                mdb_txn_abort(transaction)
                if error.isMapFull {
                    try grow(action: action)
                    continue
                }
                throw error.storageError(path: path, action: action)
            }
            // After mdb_txn_commit the transaction is gone, whatever the outcome: never abort it.
            code = mdb_txn_commit(transaction)
            if code == MDB_SUCCESS { return result }
            if code == MDB_MAP_FULL {
                try grow(action: action)
                continue
            }
            throw LMDBError(code: code, operation: "mdb_txn_commit").storageError(path: path, action: action)
        }
    }

    /// Doubles the map (up to the maximum). Only call with no transaction active (this waits for
    /// the reads running without the store's lock).
    private func grow(action: String) throws(ConveyorError) {
        waitForUnlockedReads()
        guard mapSize < maximumMapSize else {
            throw ConveyorError(
                .resourceAllocation,
                "cannot \(action) the LMDB store at '\(path)': it has reached its maximum map size of "
                    + "\(maximumMapSize) bytes; consume or purge messages, or raise LMDBStore.Options.maximumMapSize "
                    + "(nothing of the failed change was stored)")
        }
        let target = Self.roundedMapSize(min(maximumMapSize, mapSize > maximumMapSize / 2 ? maximumMapSize : mapSize * 2))
        let code = mdb_env_set_mapsize(handle, target)
        guard code == MDB_SUCCESS else {
            throw LMDBError(code: code, operation: "mdb_env_set_mapsize").storageError(path: path, action: action)
        }
        refreshMapSize()
    }

    /// Another process grew the map: adopt its size.
    private func adoptResizedMap() throws(ConveyorError) {
        waitForUnlockedReads()
        let code = mdb_env_set_mapsize(handle, 0)
        guard code == MDB_SUCCESS else {
            throw LMDBError(code: code, operation: "mdb_env_set_mapsize").storageError(path: path, action: "resize")
        }
        refreshMapSize()
    }

    private func refreshMapSize() {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        mapSize = info.me_mapsize
    }

    /// Map sizes are kept to multiples of 64 KiB, a multiple of every common page size, and at
    /// least 256 KiB.
    private static func roundedMapSize(_ size: Int) -> Int {
        let granule = 64 << 10
        let clamped = max(size, 256 << 10)
        let (rounded, overflow) = clamped.addingReportingOverflow(granule - 1)
        return overflow ? Int.max & ~(granule - 1) : rounded & ~(granule - 1)
    }

    /// Runs an LMDB call during open, turning its error into a storage error.
    private static func storage(_ path: String, _ action: String, _ body: () throws(LMDBError) -> Void) throws(ConveyorError) {
        do throws(LMDBError) { try body() } catch { throw error.storageError(path: path, action: action) }
    }
}
