import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Conveyor

/// `GroupCommit`: concurrent committers share one write, and a leader waits for the committers it
/// expects.
@Suite("Group commit")
struct GroupCommitTests {
    /// What the committers of a test saw: the size of each group written, and who has returned.
    final class Log: Sendable {
        let groups = Mutex<[Int]>([])
        let secondReturned = Atomic(false)
        /// What the second committer's commit threw, if anything.
        let secondError = Mutex<ConveyorError?>(nil)

        /// A write that records its group's size and succeeds.
        func write(_ batches: [StoreBatch], _ syncs: Bool) -> [Result<Void, ConveyorError>] {
            groups.withLock { $0.append(batches.count) }
            return batches.map { _ in .success(()) }
        }

        var written: [Int] { groups.withLock { $0 } }
        var hasSecondReturned: Bool { secondReturned.load(ordering: .sequentiallyConsistent) }
    }

    /// A batch of `count` acknowledgements.
    private static func batch(of count: Int) -> StoreBatch {
        StoreBatch((0..<count).map { .remove(sequence: UInt64($0), from: .queue("group-commit")) })
    }

    /// Commits a batch on a thread of its own and holds its write until a second batch (committed on
    /// another thread) is queued behind it. After that first group of one
    /// with one committer waiting, the group commit expects two committers at a time, so the second
    /// committer, leading alone, is the one whose waiting the tests look at. With `failure`, the
    /// second committer's write (of its whole group) fails with it.
    private func commitBehindAHeldWrite(_ group: GroupCommit<StoreBatch>, failingWith failure: ConveyorError? = nil) async -> Log {
        let log = Log()
        let held = DispatchSemaphore(value: 0)
        let writing = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? group.commit(Self.batch(of: 1)) { batches, syncs in
                writing.signal()
                held.wait()
                return log.write(batches, syncs)
            }
        }
        writing.wait()
        Thread.detachNewThread {
            do throws(ConveyorError) {
                try group.commit(Self.batch(of: 1)) { batches, syncs in
                    guard let failure else { return log.write(batches, syncs) }
                    return batches.map { _ in .failure(failure) }
                }
            } catch {
                log.secondError.withLock { $0 = error }
            }
            log.secondReturned.store(true, ordering: .sequentiallyConsistent)
        }
        await waitUntil { group.pendingCount == 1 }
        held.signal()
        return log
    }

    @Test
    func aCommitterThatArrivesDuringAWriteLeadsTheNextGroup() async throws {
        let group = GroupCommit<StoreBatch>()
        let log = await commitBehindAHeldWrite(group)
        #expect(await waitUntil { log.hasSecondReturned })
        #expect(log.written == [1, 1])
        #expect(group.syncedWrites == 2)
    }

    @Test
    func aLeaderWaitsForTheCommitterItExpectsAndSharesItsWrite() async throws {
        let group = GroupCommit<StoreBatch>(adaptiveLinger: .seconds(10))
        let log = await commitBehindAHeldWrite(group)
        #expect(await waitUntil { group.isLingering })
        #expect(!log.hasSecondReturned)
        // The partner it expects arrives: both are written together, long before the linger ends,
        // by the partner itself, which takes the group over rather than wake the leader to write it.
        let thirdReturned = Atomic(false)
        let writtenByThird = Atomic(false)
        Thread.detachNewThread {
            try? group.commit(Self.batch(of: 1)) { batches, syncs in
                writtenByThird.store(true, ordering: .sequentiallyConsistent)
                return log.write(batches, syncs)
            }
            thirdReturned.store(true, ordering: .sequentiallyConsistent)
        }
        #expect(await waitUntil { log.hasSecondReturned && thirdReturned.load(ordering: .sequentiallyConsistent) })
        #expect(log.written == [1, 2])
        let wroteIt = writtenByThird.load(ordering: .sequentiallyConsistent)
        #expect(wroteIt)
        #expect(group.syncedWrites == 2)
        // The leader that was taken over left nothing behind: nobody waits or lingers.
        #expect(!group.isLingering)
        #expect(group.pendingCount == 0)
    }

    @Test
    func aBatchHandedToTheLingeringLeaderIsWrittenByItWithoutBlockingItsCommitter() async throws {
        let group = GroupCommit<StoreBatch>(adaptiveLinger: .seconds(10))
        // Nobody lingers yet: the hand-off takes nothing.
        #expect(!group.handOff(Self.batch(of: 1)) { _ in Issue.record("a batch not taken was completed") })
        #expect(group.pendingCount == 0)

        let log = await commitBehindAHeldWrite(group)
        #expect(await waitUntil { group.isLingering })
        #expect(group.awaitsOneMore)
        let outcome = Mutex<Result<Void, ConveyorError>?>(nil)
        let taken = group.handOff(Self.batch(of: 1)) { result in outcome.withLock { $0 = result } }
        #expect(taken)
        // The leader, woken, writes both batches as one group and calls the committer back; the
        // committer's thread never waited (the hand-off returned before the write).
        #expect(await waitUntil { log.hasSecondReturned && outcome.withLock { $0 != nil } })
        #expect(log.written == [1, 2])
        #expect(throws: Never.self) { try outcome.withLock { $0 }?.get() }
        #expect(!group.isLingering)
        #expect(group.pendingCount == 0)
    }

    @Test
    func aHandedOffBatchGetsTheGroupsFailure() async throws {
        let group = GroupCommit<StoreBatch>(adaptiveLinger: .seconds(10))
        let log = await commitBehindAHeldWrite(group, failingWith: ConveyorError(.storage, "disk full"))
        #expect(await waitUntil { group.isLingering })
        let outcome = Mutex<Result<Void, ConveyorError>?>(nil)
        #expect(group.handOff(Self.batch(of: 1)) { result in outcome.withLock { $0 = result } })
        #expect(await waitUntil { outcome.withLock { $0 != nil } && log.hasSecondReturned })
        let error = #expect(throws: ConveyorError.self) { try outcome.withLock { $0 }?.get() }
        #expect(error?.message == "disk full")
        #expect(log.secondError.withLock { $0 }?.message == "disk full")
    }
}
