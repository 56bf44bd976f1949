// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Conveyor", targets: ["Conveyor"]),
        .library(name: "ConveyorLMDB", targets: ["ConveyorLMDB"]),
        .library(name: "ConveyorWorkloads", targets: ["ConveyorWorkloads"]),
        .executable(name: "conveyor", targets: ["ConveyorCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "Conveyor",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"]), .brew(["lmdb"])]
        ),
        .target(
            name: "ConveyorLMDB",
            dependencies: ["Conveyor", "CLMDB", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "ConveyorWorkloads",
            dependencies: ["Conveyor", "ConveyorLMDB", "CLMDB"]
        ),
        // The demos of `conveyor demo` and the CLI's argument parsing, in a library so tests can run them.
        .target(
            name: "ConveyorDemos",
            dependencies: ["Conveyor", "ConveyorLMDB"]
        ),
        .executableTarget(
            name: "ConveyorCLI",
            dependencies: [
                "Conveyor",
                "ConveyorLMDB",
                "ConveyorDemos",
                "ConveyorWorkloads",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The child process the crash-safety tests kill (not a product; built with the tests).
        .executableTarget(
            name: "ConveyorCrashWorker",
            dependencies: ["Conveyor", "ConveyorLMDB"]
        ),
        .testTarget(
            name: "ConveyorTests",
            dependencies: ["Conveyor", "ConveyorLMDB", "ConveyorCrashWorker", "ConveyorDemos", "ConveyorCLI", "ConveyorWorkloads"]
        ),
    ]
)

// One settings block for every target (system library targets take no Swift settings).
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
