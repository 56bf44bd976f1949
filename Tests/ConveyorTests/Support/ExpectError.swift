import Conveyor
import Testing

/// Expects `body` to throw a ``ConveyorError`` with `code`, and returns it for further checks.
@discardableResult
func expectError<T>(_ code: ConveyorError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () async throws -> T) async -> ConveyorError? {
    do {
        _ = try await body()
        Issue.record("expected a \(code) error, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ConveyorError {
        #expect(error.code == code, "wrong code; message: \(error.message)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a ConveyorError(\(code)), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
