import ArgumentParser
import Conveyor
import ConveyorLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options every store-operating command shares: which engine and which directory.
///
/// Only one process may open a store directory at a time for now (multi-process access is a later
/// issue); a second process gets a clear error instead of a broker that silently disagrees with the
/// first one.
struct StoreOptions: ParsableArguments {
    /// The storage engines the CLI can open.
    enum Engine: String, ExpressibleByArgument, CaseIterable {
        case lmdb
        case file
        case memory
    }

    /// The environment variable naming the store directory when `--directory` is not given.
    static let directoryVariable = "CONVEYOR_DIRECTORY"
    /// The directory used when neither `--directory` nor the environment variable is given.
    static let defaultDirectory = "./conveyor-data"

    @Option(help: "The storage engine: lmdb (default), file or memory (empty, gone when the command ends).")
    var store: Engine = .lmdb

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The store directory (default: $\(StoreOptions.directoryVariable), else \(StoreOptions.defaultDirectory)).",
            valueName: "dir"))
    var directory: String?

    /// The directory in effect: `--directory`, else the environment variable, else the default.
    var resolvedDirectory: String {
        if let directory, !directory.isEmpty { return directory }
        if let fromEnvironment = ProcessInfo.processInfo.environment[Self.directoryVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return Self.defaultDirectory
    }

    /// Opens a broker on the chosen store.
    /// - Parameters:
    ///   - createIfMissing: Whether a missing directory may be created (sending does; reading
    ///     commands report that there is no store instead).
    ///   - configuration: The broker's settings.
    func openBroker(createIfMissing: Bool, configuration: BrokerConfiguration = .init()) throws -> Broker {
        let directory = resolvedDirectory
        let messageStore: any MessageStore
        switch store {
        case .memory:
            Console.progress("note: the memory store is empty and ends with this command; use it to try options, not to keep messages\n")
            messageStore = MemoryStore()
        case .lmdb:
            try checkDirectory(directory, createIfMissing: createIfMissing)
            if Self.isInUseByAnotherProcess(lmdbDirectory: directory) {
                throw CommandLineError(Self.inUseMessage(directory))
            }
            messageStore = LMDBStore(directory: directory)
        case .file:
            try checkDirectory(directory, createIfMissing: createIfMissing)
            messageStore = try FileStoreSupport.make(directory: directory)
        }
        do {
            return try Broker(store: messageStore, configuration: configuration)
        } catch {
            let text = error.message
            if text.contains("lock") || text.contains("in use") || text.contains("already open") || text.contains("EAGAIN") {
                throw CommandLineError(Self.inUseMessage(directory) + " (\(text))")
            }
            throw CommandLineError(text.contains(directory) ? text : "cannot open the \(store.rawValue) store at \(directory): \(text)")
        }
    }

    private func checkDirectory(_ directory: String, createIfMissing: Bool) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
        if exists, !isDirectory.boolValue {
            throw CommandLineError("\(directory) is a file, not a store directory; choose another with --directory")
        }
        if !exists, !createIfMissing {
            throw CommandLineError(
                "there is no store at \(directory): send a message first, or point --directory (or $\(Self.directoryVariable)) at an existing store")
        }
    }

    static func inUseMessage(_ directory: String) -> String {
        "the store at \(directory) is in use by another process; multi-process access is not supported yet (stop the other process, or use another --directory)"
    }

    /// Whether another process has the LMDB environment in `directory` open.
    ///
    /// Every process with an LMDB environment open holds a shared POSIX lock on the first byte of
    /// `lock.mdb`; trying to take an exclusive lock there (without waiting) fails while one does. The
    /// probe lock is released at once, before this process opens the environment itself.
    static func isInUseByAnotherProcess(lmdbDirectory directory: String) -> Bool {
        let path = (directory as NSString).appendingPathComponent("lock.mdb")
        let descriptor = open(path, O_RDWR)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 1
        if fcntl(descriptor, F_SETLK, &lock) == -1 {
            return errno == EAGAIN || errno == EACCES
        }
        lock.l_type = Int16(F_UNLCK)
        _ = fcntl(descriptor, F_SETLK, &lock)
        return false
    }
}

/// The help paragraph shared by the store commands.
enum StoreHelp {
    static let discussion = """
        The store is LMDB in ./conveyor-data unless --directory or $\(StoreOptions.directoryVariable) says otherwise. \
        One process at a time: multi-process access is not supported yet, so a command run while another \
        process (another conveyor command, or an application) has the store open fails with a clear error \
        instead of sharing it. So, for now, 'receive --follow' in one terminal and 'send' in another do not \
        work together: the second command is refused while the first holds the store.
        """
}
