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
/// The LMDB store is opened for sharing with other processes (`sharing: .processes`), so that a
/// command in one terminal and another command, or an application that also opens the directory
/// with `sharing: .processes`, act as one broker. The file store is single-process: a second
/// process gets a clear error naming the holder.
struct StoreOptions: ParsableArguments {
    /// The storage engines the CLI can open.
    enum Engine: String, ExpressibleByArgument, CaseIterable {
        case lmdb
        case file
        case memory
    }

    /// The environment variable naming the store directory when `--directory` is not given.
    static let directoryVariable = "CONVEYOR_DIRECTORY"
    /// The environment variable naming the engine when `--store` is not given.
    static let engineVariable = "CONVEYOR_STORE"
    /// The directory used when neither `--directory` nor the environment variable is given.
    static let defaultDirectory = "./conveyor-data"

    @Option(help: "The storage engine: lmdb (default: $\(StoreOptions.engineVariable), else lmdb), file or memory (empty, gone when the command ends).")
    var store: Engine?

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

    /// The engine in effect: `--store`, else the environment variable, else LMDB.
    /// - Throws: ``CommandLineError`` if the environment variable names no engine.
    func resolvedEngine() throws -> Engine {
        if let store { return store }
        guard let fromEnvironment = ProcessInfo.processInfo.environment[Self.engineVariable], !fromEnvironment.isEmpty else {
            return .lmdb
        }
        guard let engine = Engine(rawValue: fromEnvironment.lowercased()) else {
            throw CommandLineError(
                "$\(Self.engineVariable) is '\(fromEnvironment)', which is no store; use one of "
                    + Engine.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return engine
    }

    /// Opens a broker on the chosen store.
    /// - Parameters:
    ///   - createIfMissing: Whether a missing directory may be created (sending does; reading
    ///     commands report that there is no store instead).
    ///   - configuration: The broker's settings.
    func openBroker(createIfMissing: Bool, configuration: BrokerConfiguration = .init()) throws -> Broker {
        let directory = resolvedDirectory
        let store = try resolvedEngine()
        let messageStore: any MessageStore
        switch store {
        case .memory:
            Console.progress("note: the memory store is empty and ends with this command; use it to try options, not to keep messages\n")
            messageStore = MemoryStore()
        case .lmdb:
            try checkDirectory(directory, createIfMissing: createIfMissing)
            messageStore = LMDBStore(directory: directory, options: .init(sharing: .processes))
        case .file:
            try checkDirectory(directory, createIfMissing: createIfMissing)
            messageStore = try FileStoreSupport.make(directory: directory)
        }
        do {
            return try Broker(store: messageStore, configuration: configuration)
        } catch {
            // The store's message names the path and, when another process holds it, that process.
            let text = error.message
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
}

/// The help paragraph shared by the store commands.
enum StoreHelp {
    static let discussion = """
        The store is LMDB in ./conveyor-data unless --store or $\(StoreOptions.engineVariable) names another engine, \
        and --directory or $\(StoreOptions.directoryVariable) another directory. \
        LMDB stores are shared between processes: 'receive --follow' in one terminal sees what 'send' in \
        another sends, and an application that opens the directory with LMDBStore(directory:, options: \
        .init(sharing: .processes)) takes part too (one opened in the default single-process mode refuses \
        the commands, naming its process). The file store is single-process.
        """
}
