@testable import ConveyorLMDB
import Foundation

/// A new directory with what a process killed now would leave of the open LMDB store in
/// `directory`: its data file, its commit log, and its delivery log files (taken from `logsFrom`
/// if given, as they were when that copy was made). The lock files are not needed.
func crashCopy(of directory: SharedTemporaryDirectory, logsFrom: SharedTemporaryDirectory? = nil) throws -> SharedTemporaryDirectory {
    let copy = SharedTemporaryDirectory()
    let fileManager = FileManager.default
    try fileManager.createDirectory(at: copy.url, withIntermediateDirectories: true)
    try fileManager.copyItem(at: directory.url.appendingPathComponent("data.mdb"), to: copy.url.appendingPathComponent("data.mdb"))
    // The commit log goes with the database: together they are the committed state.
    let commits = directory.url.appendingPathComponent(CommitLog.fileName)
    if fileManager.fileExists(atPath: commits.path) {
        try fileManager.copyItem(at: commits, to: copy.url.appendingPathComponent(CommitLog.fileName))
    }
    for name in DeliveryLog.fileNames {
        let source = (logsFrom ?? directory).url.appendingPathComponent(name)
        if fileManager.fileExists(atPath: source.path) {
            try fileManager.copyItem(at: source, to: copy.url.appendingPathComponent(name))
        }
    }
    return copy
}
