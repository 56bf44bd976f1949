import Conveyor
import ConveyorLMDB
import ConveyorWorkloads
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
