import ArgumentParser
import Conveyor
import ConveyorDemos

/// Argument parsing shared by the commands, turning `CommandLineParsing` failures into one-line errors.
enum Arguments {
    static func duration(_ text: String?, option: String) throws -> Duration? {
        guard let text else { return nil }
        do {
            return try CommandLineParsing.duration(text, option: option)
        } catch {
            throw CommandLineError(error.message)
        }
    }

    static func destination(_ text: String) throws -> Destination {
        do {
            return try CommandLineParsing.destination(text)
        } catch {
            throw CommandLineError(error.message)
        }
    }

    static func queue(_ text: String, command: String) throws -> Queue {
        do {
            return try CommandLineParsing.queue(text, command: command)
        } catch {
            throw CommandLineError(error.message)
        }
    }

    static func selector(_ text: String?) throws {
        guard let text, !text.isEmpty else { return }
        do {
            _ = try Selector(text)
        } catch {
            throw CommandLineError(error.message)
        }
    }

    /// Turns a Conveyor error into a one-line command-line error.
    static func describe(_ error: any Error) -> CommandLineError {
        if let error = error as? CommandLineError { return error }
        if let error = error as? ConveyorError { return CommandLineError("\(error.code): \(error.message)") }
        return CommandLineError("\(error)")
    }
}

extension MessageFormatter.Format: ExpressibleByArgument {}
