/// A failure the tool reports to the user: printed as one line, `Error: <message>`, with exit code 1.
struct CommandLineError: Error, CustomStringConvertible {
    /// What went wrong and, where possible, what to type instead.
    var message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { message }
}
