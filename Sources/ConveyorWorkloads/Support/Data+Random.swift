import Foundation

extension Data {
    /// `count` random bytes: the body of the standard workloads' bytes messages.
    static func random(count: Int) -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
