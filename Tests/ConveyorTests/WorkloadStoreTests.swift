import Conveyor
import ConveyorLMDB
@testable import ConveyorWorkloads
import Foundation
import Testing

/// `conveyor bench --durability`: the disk stores in another durability mode, labelled with it.
@Suite("Workload stores")
struct WorkloadStoreTests {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("conveyor-workload-store-\(UUID().uuidString)")

    @Test
    func aDiskStoreInAnotherModeIsLabelledAndOpensInThatMode() throws {
        let lmdb = WorkloadStore.lmdb.with(durability: .osBuffered)
        #expect(lmdb.name == "lmdb/osBuffered")
        #expect(try (lmdb.makeStore(directory) as? LMDBStore)?.options.durability == .osBuffered)
        // X1's peer process opens the store in sync mode, so X1 does not run in another mode.
        #expect(lmdb.makeSharedStore == nil)

        let file = WorkloadStore.file.with(durability: .groupCommit)
        #expect(file.name == "file/groupCommit")
        #expect(try (file.makeStore(directory) as? FileStore)?.options.durability == .groupCommit)
    }

    @Test
    func syncAndTheMemoryStoreStayAsTheyAre() {
        #expect(WorkloadStore.lmdb.with(durability: .sync).name == "lmdb")
        #expect(WorkloadStore.lmdb.with(durability: .sync).makeSharedStore != nil)
        #expect(WorkloadStore.memory.with(durability: .osBuffered).name == "memory")
    }
}

extension WorkloadStoreTests {
    @Test
    func aLabelWithADurabilityNamesTheStoreInThatMode() throws {
        #expect(WorkloadStore.named("lmdb/osBuffered")?.name == "lmdb/osBuffered")
        #expect(WorkloadStore.named("File/GroupCommit")?.name == "file/groupCommit")
        #expect(WorkloadStore.named("file")?.name == "file")
        #expect(WorkloadStore.named("file/sometimes") == nil)
        #expect(WorkloadStore.named("lmdb/sync/extra") == nil)
    }

    @Test
    func scalingMultipliesEveryMessageCountOfAWorkload() throws {
        let requestReply = try #require(WorkloadID.l1.workload(scaledBy: 0.01) as? RequestReplyWorkload)
        #expect(requestReply.messages == 200)
        #expect(requestReply.warmUp == 20)
        let crossProcess = try #require(WorkloadID.x1.workload(scaledBy: 0.01) as? CrossProcessWorkload)
        #expect(crossProcess.messages == 50)
        #expect(crossProcess.pacedMessages == 5)
        #expect(WorkloadID.w2.workload(scaledBy: 0.000_001)?.messages == 1, "at least one message")
        #expect(WorkloadID.w3.workload?.messages == 200_000, "unscaled: the standard workload")
    }

    @Test
    func w2OnLMDBReportsTheFsyncFloorAndTheBareLMDBCommitRateBesideIt() async throws {
        let workload = QueuePersistentSyncWorkload(messages: 50)
        let lmdb = try StoreLocation(store: .lmdb)
        let measured = try await workload.run(at: lmdb)
        let floor = try #require(measured.fsyncFloorPerSecond)
        let overwriteFloor = try #require(measured.fsyncOverwriteFloorPerSecond)
        let lmdbFloor = try #require(measured.lmdbCommitFloorPerSecond)
        #expect(floor > 0 && overwriteFloor > 0 && lmdbFloor > 0)
        #expect(!FileManager.default.fileExists(atPath: lmdb.directory.appendingPathComponent("fsync-probe").path),
                "the floor's probe file is removed")
        #expect(!FileManager.default.fileExists(atPath: lmdb.directory.appendingPathComponent("lmdb-commit-probe").path),
                "the probe's environment is removed")

        let file = try StoreLocation(store: .file)
        let fileMeasured = try await workload.run(at: file)
        #expect(fileMeasured.fsyncFloorPerSecond != nil)
        #expect(fileMeasured.fsyncOverwriteFloorPerSecond != nil)
        let summary = WorkloadResult(workload: workload, store: "file", measurements: [fileMeasured])
        let json = try #require(String(data: try JSONEncoder().encode(summary), encoding: .utf8))
        #expect(json.contains("\"fsync_floor_per_s\"") && json.contains("\"fsync_overwrite_floor_per_s\""))
        #expect(fileMeasured.lmdbCommitFloorPerSecond == nil, "only LMDB is compared with bare LMDB commits")
    }

    @Test
    func aResultTakesTheMedianOfEachFigureOverTheRunsThatMeasuredIt() {
        var runs = [10.0, 30.0, 20.0].map { WorkloadMeasurement(count: 100, elapsed: .seconds($0 / 10), openSeconds: $0) }
        runs[0].fsyncFloorPerSecond = 5_000
        runs[2].fsyncFloorPerSecond = 7_000
        let result = WorkloadResult(workload: QueuePersistentSyncWorkload(), store: "file", measurements: runs)
        #expect(result.openSeconds == 20)
        #expect(result.fsyncFloorPerSecond == 6_000, "the mean of the middle two of the runs that measured it")
        #expect(result.fsyncOverwriteFloorPerSecond == nil && result.rssAnonMiB == nil, "no run measured them")
        #expect(result.rateMedian == 50 && result.rateMin == 100.0 / 3 && result.rateMax == 100)
    }

    @Test
    func theFsyncFloorAppendsToAGrowingFileAndItsOverwriteVariantRewritesSixteenBlocks() {
        let appended = (0..<40).map { FsyncFloor.offset(ofWrite: $0, pattern: .append) }
        #expect(appended == (0..<40).map { off_t($0) * 4096 }, "each write extends the file by one block")
        let rewritten = (0..<40).map { FsyncFloor.offset(ofWrite: $0, pattern: .overwrite) }
        #expect(Set(rewritten) == Set((0..<16).map { off_t($0) * 4096 }))
        #expect(rewritten[16] == 0 && rewritten[39] == 23 * 4096 % (16 * 4096))
    }

    @Test
    func diskWorkloadsCountTheSyncedWritesTheirMessagesCost() async throws {
        // W2: each send is synced, and the acknowledgement before it shares that write or takes one.
        let w2 = try await QueuePersistentSyncWorkload(messages: 50).run(at: StoreLocation(store: .file))
        let w2PerThousand = try #require(w2.syncedWritesPerThousand)
        #expect(w2PerThousand >= 1000 && w2PerThousand <= 2000, "\(w2PerThousand)")
        // W3: transactions of 100, so at most one synced write per 100 sends and one per 100 receives.
        for store in [WorkloadStore.file, .lmdb] {
            let w3 = try await QueuePersistentBatchedWorkload(messages: 1000).run(at: StoreLocation(store: store))
            let perThousand = try #require(w3.syncedWritesPerThousand)
            #expect(perThousand >= 10 && perThousand <= 20, "\(store.name): \(perThousand)")
        }
        // No syncs to count in memory, and none in the OS-buffered mode.
        let memory = try await QueuePersistentBatchedWorkload(messages: 200).run(at: StoreLocation(store: .memory))
        #expect(memory.syncedWritesPerThousand == nil)
        let buffered = try await QueuePersistentBatchedWorkload(messages: 200)
            .run(at: StoreLocation(store: WorkloadStore.file.with(durability: .osBuffered)))
        #expect(buffered.syncedWritesPerThousand == 0)
    }
}

extension HeavyTests {
    /// W6's crash phase: a `conveyor bench-fill` process queues the backlog and is killed, and the
    /// workload times opening what it left, having checked every message is there.
    @Suite("W6 open after a kill", .timeLimit(.minutes(2)))
    struct BacklogRecoveryAfterKillTests {
        @Test(arguments: [WorkloadStore.lmdb, WorkloadStore.file])
        func theWorkloadTimesOpeningTheBacklogAKilledProcessLeft(store: WorkloadStore) async throws {
            let executable = try #require(ConveyorExecutable.locate(), "the conveyor executable was not found; `swift build` builds it")
            BacklogRecoveryWorkload.writer = PeerLauncher(executable: executable, arguments: ["bench-fill"])
            defer { BacklogRecoveryWorkload.writer = nil }

            let measurement = try await BacklogRecoveryWorkload(messages: 1_000).run(at: StoreLocation(store: store))
            let afterKill = try #require(measurement.openAfterKillSeconds)
            #expect(afterKill > 0)
            #expect(measurement.openSeconds != nil)
        }

        @Test
        func theMemoryStoreHasNothingToOpenAfterAKill() async throws {
            let executable = try #require(ConveyorExecutable.locate())
            BacklogRecoveryWorkload.writer = PeerLauncher(executable: executable, arguments: ["bench-fill"])
            defer { BacklogRecoveryWorkload.writer = nil }

            let measurement = try await BacklogRecoveryWorkload(messages: 200).run(at: StoreLocation(store: .memory))
            #expect(measurement.openAfterKillSeconds == nil)
        }
    }
}
