import CLMDB
import Conveyor

/// The claims of a shared store's process group: a second, small LMDB environment in
/// `shared/claims/`, reset whenever a new group starts.
///
/// Its content only matters while the group lives, so it is opened without syncs
/// (`MDB_NOSYNC | MDB_NOMETASYNC`): a crash of the machine ends the group anyway. Opened with
/// `MDB_NOTLS`, like the main environment. The map is 1 GiB, fixed: the file is sparse, and a
/// claim costs a few dozen bytes.
///
/// Layout (integers in keys big-endian, so keys sort numerically):
///
/// | database | key | value |
/// | --- | --- | --- |
/// | `claims` | destination ID ‖ sequence | claiming member ID (u64 LE) |
/// | `byMember` | member ID ‖ destination ID ‖ sequence | empty |
/// | `members` | member ID | process ID (i32 LE) |
/// | `meta` | `lastMember` | the last member ID handed out (u64 LE) |
/// | `meta` | `group` | the group's ID, random, set by its first member (u64 LE) |
/// | `statistics` | member ID | the member's published counters (``PublishedStatistics``) |
///
/// `byMember` mirrors `claims`, so that the claims of a member that leaves or dies are one range.
final class ClaimsEnvironment: @unchecked Sendable {
    /// The environment's directory, for error messages.
    let path: String
    private let handle: OpaquePointer
    private(set) var databases = ClaimsDatabases()
    private var isClosed = false

    /// The map size: large enough never to fill, free until used.
    static let mapSize = 1 << 30

    private init(path: String, handle: OpaquePointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens (creating its files) the environment in an existing directory.
    /// - Throws: ``ConveyorError/Code/storage`` naming the path and LMDB's explanation.
    static func open(path: String) throws(ConveyorError) -> ClaimsEnvironment {
        var created: OpaquePointer?
        let code = mdb_env_create(&created)
        guard code == MDB_SUCCESS, let handle = created else {
            throw LMDBError(code: code, operation: "mdb_env_create").storageError(path: path, action: "open the claims of")
        }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(handle, 5), "mdb_env_set_maxdbs")
            try check(mdb_env_set_mapsize(handle, mapSize), "mdb_env_set_mapsize")
            let flags = UInt32(MDB_NOTLS) | UInt32(MDB_NOSYNC) | UInt32(MDB_NOMETASYNC)
            try check(mdb_env_open(handle, path, flags, 0o644), "mdb_env_open")
        } catch {
            mdb_env_close(handle)
            throw error.storageError(path: path, action: "open the claims of")
        }
        let environment = ClaimsEnvironment(path: path, handle: handle)
        do throws(ConveyorError) {
            environment.databases = try environment.write { (transaction) throws(any Error) in
                try ClaimsDatabases(opening: transaction)
            }
        } catch {
            environment.close()
            throw error
        }
        return environment
    }

    /// Closes the environment; it must not be used afterwards.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        mdb_env_close(handle)
    }

    deinit { close() }

    /// Frees the reader slots of dead processes (LMDB only notices them when asked).
    func clearStaleReaders() {
        var dead: Int32 = 0
        _ = mdb_reader_check(handle, &dead)
    }

    /// Runs `body` in a read-only transaction.
    func read<R>(_ body: (ClaimsTable) throws(LMDBError) -> R) throws(ConveyorError) -> R {
        var transaction: OpaquePointer?
        let code = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &transaction)
        guard code == MDB_SUCCESS, let transaction else {
            throw LMDBError(code: code, operation: "mdb_txn_begin").storageError(path: path, action: "read the claims of")
        }
        defer { mdb_txn_abort(transaction) }
        do throws(LMDBError) {
            return try body(ClaimsTable(transaction: LMDBTransaction(handle: transaction), databases: databases))
        } catch {
            throw error.storageError(path: path, action: "read the claims of")
        }
    }

    /// Runs `body` in a write transaction and commits it; aborts it if `body` throws.
    ///
    /// `body` may throw ``LMDBError`` (reported naming this environment) or ``ConveyorError``
    /// (passed on: a failure of the main environment read inside a claim, say).
    func write<R>(_ body: (ClaimsTable) throws(any Error) -> R) throws(ConveyorError) -> R {
        try write { (transaction: LMDBTransaction) throws(any Error) -> R in
            try body(ClaimsTable(transaction: transaction, databases: databases))
        }
    }

    private func write<R>(_ body: (LMDBTransaction) throws(any Error) -> R) throws(ConveyorError) -> R {
        var transaction: OpaquePointer?
        var code = mdb_txn_begin(handle, nil, 0, &transaction)
        guard code == MDB_SUCCESS, let transaction else {
            throw LMDBError(code: code, operation: "mdb_txn_begin").storageError(path: path, action: "write the claims of")
        }
        let result: R
        do {
            result = try body(LMDBTransaction(handle: transaction))
        } catch let error as LMDBError {
            mdb_txn_abort(transaction)
            throw error.storageError(path: path, action: "write the claims of")
        } catch let error as ConveyorError {
            mdb_txn_abort(transaction)
            throw error
        } catch {
            mdb_txn_abort(transaction)
            throw ConveyorError(.storage, "cannot write the claims of the LMDB store at '\(path)'", underlying: error)
        }
        code = mdb_txn_commit(transaction)
        guard code == MDB_SUCCESS else {
            throw LMDBError(code: code, operation: "mdb_txn_commit").storageError(path: path, action: "write the claims of")
        }
        return result
    }
}

/// The named databases of a ``ClaimsEnvironment``.
struct ClaimsDatabases {
    var claims: MDB_dbi = 0
    var byMember: MDB_dbi = 0
    var members: MDB_dbi = 0
    var meta: MDB_dbi = 0
    var statistics: MDB_dbi = 0

    init() {}

    init(opening transaction: LMDBTransaction) throws(LMDBError) {
        claims = try Self.open("claims", in: transaction)
        byMember = try Self.open("byMember", in: transaction)
        members = try Self.open("members", in: transaction)
        meta = try Self.open("meta", in: transaction)
        statistics = try Self.open("statistics", in: transaction)
    }

    private static func open(_ name: String, in transaction: LMDBTransaction) throws(LMDBError) -> MDB_dbi {
        var database: MDB_dbi = 0
        try check(mdb_dbi_open(transaction.handle, name, UInt32(MDB_CREATE), &database), "mdb_dbi_open")
        return database
    }
}

/// A live or dead member of a process group, as the `members` database lists it.
struct GroupMember: Hashable, Sendable {
    /// The member ID, unique within the group's lifetime.
    var id: UInt64
    /// The member's process ID.
    var pid: Int32

    /// The member's ``SharedMessageStore/processToken``: `"<member ID>-<pid>"`.
    var token: String { "\(id)-\(pid)" }
}

/// The claims operations, inside one transaction of a ``ClaimsEnvironment``.
struct ClaimsTable {
    let transaction: LMDBTransaction
    let databases: ClaimsDatabases

    private static let lastMemberKey: StaticString = "lastMember"
    private static let groupKey: StaticString = "group"

    // MARK: Claims

    /// The member holding a claim on a reference, if any.
    func claimant(destination: UInt64, sequence: UInt64) throws(LMDBError) -> UInt64? {
        try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) -> UInt64? in
            guard let raw = try transaction.get(databases.claims, key) else { return nil }
            guard let member = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted("claim") }
            return member
        }
    }

    /// Records that `member` claims a reference.
    func claim(destination: UInt64, sequence: UInt64, member: UInt64) throws(LMDBError) {
        try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
            try LMDBValue.with(member) { (value) throws(LMDBError) in
                try transaction.put(databases.claims, key, value)
            }
        }
        try Self.withMemberKey(member: member, destination: destination, sequence: sequence) { (key) throws(LMDBError) in
            var none: UInt8 = 0
            try withUnsafeBytes(of: &none) { (raw) throws(LMDBError) in
                try transaction.put(databases.byMember, key, UnsafeRawBufferPointer(start: raw.baseAddress, count: 0))
            }
        }
    }

    /// Deletes the claim on a reference if `member` holds it (any holder when `member` is `nil`).
    /// - Returns: Whether a claim was deleted.
    @discardableResult
    func release(destination: UInt64, sequence: UInt64, heldBy member: UInt64? = nil) throws(LMDBError) -> Bool {
        guard let holder = try claimant(destination: destination, sequence: sequence) else { return false }
        if let member, member != holder { return false }
        try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
            _ = try transaction.delete(databases.claims, key)
        }
        try Self.withMemberKey(member: holder, destination: destination, sequence: sequence) { (key) throws(LMDBError) in
            _ = try transaction.delete(databases.byMember, key)
        }
        return true
    }

    /// Deletes every claim on a destination's references (it was purged or deleted).
    func releaseAll(destination: UInt64) throws(LMDBError) {
        var claimed: [(sequence: UInt64, member: UInt64)] = []
        try transaction.withCursor(databases.claims) { (cursor) throws(LMDBError) in
            var entry = try LMDBKey.with(destination: destination, sequence: 0) { (key) throws(LMDBError) in
                try cursor.seek(atLeast: key)
            }
            while let current = entry, let reference = LMDBKey.reference(current.key), reference.destination == destination {
                guard let member = LMDBValue.read(current.value, as: UInt64.self) else { throw .corrupted("claim") }
                claimed.append((reference.sequence, member))
                entry = try cursor.next()
            }
        }
        for (sequence, member) in claimed {
            try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.claims, key)
            }
            try Self.withMemberKey(member: member, destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.byMember, key)
            }
        }
    }

    /// Deletes every claim a member holds.
    /// - Returns: How many claims were deleted.
    @discardableResult
    func releaseAll(member: UInt64) throws(LMDBError) -> Int {
        var claimed: [(destination: UInt64, sequence: UInt64)] = []
        try transaction.withCursor(databases.byMember) { (cursor) throws(LMDBError) in
            var entry = try Self.withMemberKey(member: member, destination: 0, sequence: 0) { (key) throws(LMDBError) in
                try cursor.seek(atLeast: key)
            }
            while let current = entry, current.key.count == 24,
                  UInt64(bigEndian: current.key.loadUnaligned(as: UInt64.self)) == member {
                claimed.append((UInt64(bigEndian: current.key.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                                UInt64(bigEndian: current.key.loadUnaligned(fromByteOffset: 16, as: UInt64.self))))
                entry = try cursor.next()
            }
        }
        for (destination, sequence) in claimed {
            try Self.withMemberKey(member: member, destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                _ = try transaction.delete(databases.byMember, key)
            }
            // The claim itself, unless another member holds it now (it cannot, but be exact).
            if try claimant(destination: destination, sequence: sequence) == member {
                try LMDBKey.with(destination: destination, sequence: sequence) { (key) throws(LMDBError) in
                    _ = try transaction.delete(databases.claims, key)
                }
            }
        }
        return claimed.count
    }

    /// Lends the 24-byte `byMember` key.
    private static func withMemberKey<R>(
        member: UInt64, destination: UInt64, sequence: UInt64, _ body: (UnsafeRawBufferPointer) throws(LMDBError) -> R
    ) throws(LMDBError) -> R {
        var key = (member.bigEndian, destination.bigEndian, sequence.bigEndian)
        return try withUnsafeBytes(of: &key) { (raw) throws(LMDBError) -> R in try body(raw) }
    }

    // MARK: Members

    /// Every member listed, live or dead.
    func members() throws(LMDBError) -> [GroupMember] {
        try transaction.withCursor(databases.members) { (cursor) throws(LMDBError) in
            var result: [GroupMember] = []
            var entry = try cursor.first()
            while let current = entry {
                guard let id = LMDBKey.number(current.key), let pid = LMDBValue.read(current.value, as: Int32.self)
                else { throw .corrupted("group member") }
                result.append(GroupMember(id: id, pid: pid))
                entry = try cursor.next()
            }
            return result
        }
    }

    /// Hands out the next member ID (never reused while the group lives).
    func allocateMemberID() throws(LMDBError) -> UInt64 {
        let next = try lastMemberID() + 1
        try LMDBKey.with(Self.lastMemberKey) { (key) throws(LMDBError) in
            try LMDBValue.with(next) { (value) throws(LMDBError) in try transaction.put(databases.meta, key, value) }
        }
        return next
    }

    /// The last member ID handed out (0 before the first).
    func lastMemberID() throws(LMDBError) -> UInt64 {
        try LMDBKey.with(Self.lastMemberKey) { (key) throws(LMDBError) -> UInt64 in
            guard let raw = try transaction.get(databases.meta, key) else { return 0 }
            guard let value = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted("last member ID") }
            return value
        }
    }

    /// The group's ID, if its first member set one: it tells this group's members apart from an
    /// earlier group's, whose member IDs were the same numbers.
    func groupID() throws(LMDBError) -> UInt64? {
        try LMDBKey.with(Self.groupKey) { (key) throws(LMDBError) -> UInt64? in
            guard let raw = try transaction.get(databases.meta, key) else { return nil }
            guard let value = LMDBValue.read(raw, as: UInt64.self) else { throw .corrupted("group ID") }
            return value
        }
    }

    /// The group's ID, chosen at random now if the group has none yet.
    func establishGroupID() throws(LMDBError) -> UInt64 {
        if let existing = try groupID() { return existing }
        let created = UInt64.random(in: 1 ... .max)
        try LMDBKey.with(Self.groupKey) { (key) throws(LMDBError) in
            try LMDBValue.with(created) { (value) throws(LMDBError) in try transaction.put(databases.meta, key, value) }
        }
        return created
    }

    /// Lists a member.
    func add(_ member: GroupMember) throws(LMDBError) {
        try LMDBKey.with(member.id) { (key) throws(LMDBError) in
            try LMDBValue.with(member.pid) { (value) throws(LMDBError) in
                try transaction.put(databases.members, key, value)
            }
        }
    }

    /// Unlists a member.
    /// - Returns: Whether it was listed.
    @discardableResult
    func remove(member id: UInt64) throws(LMDBError) -> Bool {
        try LMDBKey.with(id) { (key) throws(LMDBError) in try transaction.delete(databases.members, key) }
    }
}
