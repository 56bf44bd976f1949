import Foundation

/// Unbuffered writes to the standard streams: results to standard output, progress to standard
/// error, so that `conveyor bench --format json > results.jsonl` still shows progress.
enum Console {
    /// Writes `text` to standard output as is.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `text` to standard error as is.
    static func progress(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
