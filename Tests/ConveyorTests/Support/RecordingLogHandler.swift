import Logging
import Synchronization

/// A log handler that keeps what is logged, for tests that check a failure is reported.
struct RecordingLogHandler: LogHandler {
    /// What was logged, shared by every copy of the handler.
    final class Records: Sendable {
        private let entries = Mutex<[(level: Logger.Level, message: String)]>([])

        fileprivate func append(_ level: Logger.Level, _ message: String) {
            entries.withLock { $0.append((level, message)) }
        }

        /// The messages logged at `level` or above.
        func messages(atLeast level: Logger.Level) -> [String] {
            entries.withLock { $0.filter { $0.level >= level }.map(\.message) }
        }
    }

    let records: Records
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.append(event.level, event.message.description)
    }

    /// A logger that records into a new `Records`.
    static func logger() -> (Logger, Records) {
        let records = Records()
        return (Logger(label: "test") { _ in RecordingLogHandler(records: records) }, records)
    }
}
