import Foundation

/// Finding an executable of this package that `swift build` (run by `swift test`) put in the build
/// directory next to the test bundle.
enum BuiltExecutable {
    /// The executable `name`: looked for from the test bundle's directory up to four levels up,
    /// then in `.build/debug` under the current directory.
    static func locate(_ name: String) -> URL? {
        let fileManager = FileManager.default
        let starts = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for start in starts {
            var directory = start.standardizedFileURL
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent(name)
                if isExecutableFile(candidate) { return candidate }
                directory = directory.deletingLastPathComponent()
            }
        }
        let fallback = URL(fileURLWithPath: fileManager.currentDirectoryPath).appendingPathComponent(".build/debug/\(name)")
        return isExecutableFile(fallback) ? fallback : nil
    }

    private static func isExecutableFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: url.path)
    }
}
