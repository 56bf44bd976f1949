import CLMDB

/// A borrowed LMDB transaction: valid only inside the closure it is lent to
/// (``LMDBEnvironment/read(_:)`` or ``LMDBEnvironment/write(_:)``).
///
/// Values returned by ``get(_:_:)`` and the cursor point into the memory map and are valid until
/// the next change in the transaction or its end; copy (decode) them before that.
struct LMDBTransaction {
    let handle: OpaquePointer

    /// The value stored under `key`, or `nil`.
    func get(_ database: MDB_dbi, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        var keyValue = MDB_val(key)
        var value = MDB_val()
        let code = mdb_get(handle, database, &keyValue, &value)
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_get")
        return value.buffer
    }

    /// Stores `value` under `key`, replacing any value there.
    func put(_ database: MDB_dbi, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(LMDBError) {
        var keyValue = MDB_val(key)
        var dataValue = MDB_val(value)
        try check(mdb_put(handle, database, &keyValue, &dataValue, 0), "mdb_put")
    }

    /// Stores `value` under `key`, which is usually above every key of `database` (sequence
    /// numbers grow): then LMDB appends it (`MDB_APPEND`), filling leaf pages instead of splitting
    /// them in half, so a commit of many new messages dirties (and syncs) fewer pages. A key that
    /// is not the highest (commits can land out of sequence order) is put the ordinary way.
    func putMostlyAppending(_ database: MDB_dbi, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(LMDBError) {
        var keyValue = MDB_val(key)
        var dataValue = MDB_val(value)
        // MDB_APPEND refuses a key that is not above the last one with MDB_KEYEXIST, before
        // changing anything.
        let code = mdb_put(handle, database, &keyValue, &dataValue, UInt32(MDB_APPEND))
        if code == MDB_KEYEXIST {
            try check(mdb_put(handle, database, &keyValue, &dataValue, 0), "mdb_put")
        } else {
            try check(code, "mdb_put")
        }
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    func delete(_ database: MDB_dbi, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var keyValue = MDB_val(key)
        let code = mdb_del(handle, database, &keyValue, nil)
        if code == MDB_NOTFOUND { return false }
        try check(code, "mdb_del")
        return true
    }

    /// How many entries `database` holds.
    func entryCount(_ database: MDB_dbi) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(handle, database, &stat), "mdb_stat")
        return stat.ms_entries
    }

    /// Lends a cursor on `database`, closed when `body` returns.
    func withCursor<R>(_ database: MDB_dbi, _ body: (LMDBCursor) throws(LMDBError) -> R) throws(LMDBError) -> R {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, database, &cursor), "mdb_cursor_open")
        guard let cursor else { throw LMDBError(code: MDB_PANIC, operation: "mdb_cursor_open") }
        defer { mdb_cursor_close(cursor) }
        return try body(LMDBCursor(handle: cursor))
    }
}

/// A borrowed LMDB cursor; see ``LMDBTransaction/withCursor(_:_:)``.
struct LMDBCursor {
    let handle: OpaquePointer

    /// A key and its value, pointing into the map.
    typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    /// The first entry.
    func first() throws(LMDBError) -> Entry? { try move(MDB_FIRST) }
    /// The last entry.
    func last() throws(LMDBError) -> Entry? { try move(MDB_LAST) }
    /// The entry after the current one.
    func next() throws(LMDBError) -> Entry? { try move(MDB_NEXT) }

    /// Deletes the entry with exactly `key`, if there is one; returns whether it did.
    ///
    /// Keys deleted in ascending order mostly lie on the leaf page the cursor is on already, where
    /// LMDB finds them without searching down from the root, as ``LMDBTransaction/delete(_:_:)``
    /// does.
    func delete(_ key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var keyValue = MDB_val(key)
        var value = MDB_val()
        let code = mdb_cursor_get(handle, &keyValue, &value, MDB_SET)
        if code == MDB_NOTFOUND { return false }
        try check(code, "mdb_cursor_get")
        try check(mdb_cursor_del(handle, 0), "mdb_cursor_del")
        return true
    }

    /// The first entry whose key is greater than or equal to `key`.
    func seek(atLeast key: UnsafeRawBufferPointer) throws(LMDBError) -> Entry? {
        var keyValue = MDB_val(key)
        var value = MDB_val()
        let code = mdb_cursor_get(handle, &keyValue, &value, MDB_SET_RANGE)
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_cursor_get")
        return (keyValue.buffer, value.buffer)
    }

    private func move(_ operation: MDB_cursor_op) throws(LMDBError) -> Entry? {
        var keyValue = MDB_val()
        var value = MDB_val()
        let code = mdb_cursor_get(handle, &keyValue, &value, operation)
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_cursor_get")
        return (keyValue.buffer, value.buffer)
    }
}

extension MDB_val {
    /// A value pointing at `buffer` (LMDB does not write through it for keys and put values).
    init(_ buffer: UnsafeRawBufferPointer) {
        self.init(mv_size: buffer.count, mv_data: UnsafeMutableRawPointer(mutating: buffer.baseAddress))
    }

    /// The bytes the value points at.
    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: mv_data, count: mv_size) }
}
