// swift-tools-version: 6.1
import PackageDescription

// The benchmarks live in their own package so that users of Conveyor never build the benchmark
// tool. Run them with `swift package benchmark` from this directory.
let package = Package(
    name: "ConveyorBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Conveyor", path: "../"),
        // MallocInterposer only: the default traits also pull in the ARC runtime interposer, and
        // ARC metrics crash on Linux with Swift 6.3.
        // The repository was renamed from package-benchmark; its plugin warns about the old identifier.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ConveyorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Conveyor", package: "Conveyor"),
                .product(name: "ConveyorWorkloads", package: "Conveyor"),
            ],
            path: "Benchmarks/ConveyorBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
