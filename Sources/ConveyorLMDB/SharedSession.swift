import Conveyor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One process's membership of the group sharing a store (``LMDBStore/Sharing/processes``): its
/// member ID, the claims environment, the shared counters, its wake FIFO and the FIFOs of the
/// others.
///
/// The group's files live in `<store>/shared/`: `counters` (``SharedCounters``), `claims/`
/// (``ClaimsEnvironment``) and `members/` (``WakeChannel``). Used under ``LMDBStore/session``'s
/// lock only.
final class SharedSession: @unchecked Sendable {
    /// This process in the group.
    let member: GroupMember
    /// The group's ID (``ClaimsTable/establishGroupID()``).
    let groupID: UInt64
    let claims: ClaimsEnvironment
    let counters: SharedCounters
    let channel: WakeChannel
    /// `<store>/shared/members`.
    let membersDirectory: String
    private var notifier: WakeNotifier

    private init(member: GroupMember, groupID: UInt64, claims: ClaimsEnvironment, counters: SharedCounters,
                 channel: WakeChannel, membersDirectory: String) {
        self.member = member
        self.groupID = groupID
        self.claims = claims
        self.counters = counters
        self.channel = channel
        self.membersDirectory = membersDirectory
        self.notifier = WakeNotifier(directory: membersDirectory, ownID: member.id)
    }

    /// `<store>/shared`.
    static func sharedDirectory(_ directory: String) -> String { directory + "/shared" }

    /// Deletes the group state of processes that are all dead; only the first process of a new
    /// group calls it, holding the group lock exclusively.
    /// - Throws: ``ConveyorError/Code/storage`` naming the folder if it cannot be deleted.
    static func resetGroup(directory: String) throws(ConveyorError) {
        let shared = sharedDirectory(directory)
        guard FileManager.default.fileExists(atPath: shared) else { return }
        do {
            try FileManager.default.removeItem(atPath: shared)
        } catch {
            throw ConveyorError(
                .storage, "cannot reset the shared state '\(shared)' of an LMDB store: \(error.localizedDescription)",
                underlying: error)
        }
    }

    /// Joins the group: creates the group's files if needed, raises the sequence counter to at
    /// least `highestSequence`, gets a member ID, creates the member's files and lists it.
    /// - Throws: ``ConveyorError/Code/storage`` naming the file and the cause.
    static func join(directory: String, highestSequence: UInt64) throws(ConveyorError) -> SharedSession {
        let shared = sharedDirectory(directory)
        let membersDirectory = shared + "/members"
        let claimsDirectory = shared + "/claims"
        for folder in [membersDirectory, claimsDirectory] {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw ConveyorError(
                    .storage, "cannot create '\(folder)' for an LMDB store shared by processes: \(error.localizedDescription)",
                    underlying: error)
            }
        }
        let counters = try SharedCounters.open(path: shared + "/counters")
        counters.raiseSequence(to: highestSequence)
        let claims: ClaimsEnvironment
        do throws(ConveyorError) {
            claims = try ClaimsEnvironment.open(path: claimsDirectory)
        } catch {
            counters.unmap()
            throw error
        }
        do throws(ConveyorError) {
            // The files first, the row last: a listed member always has its lock file, so a missing
            // one means a dead member.
            let (id, groupID) = try claims.write { (table) throws(any Error) in
                (try table.allocateMemberID(), try table.establishGroupID())
            }
            let member = GroupMember(id: id, pid: getpid())
            let channel = try WakeChannel.create(directory: membersDirectory, member: id)
            do throws(ConveyorError) {
                try claims.write { (table) throws(any Error) in try table.add(member) }
            } catch {
                channel.removeFilesAndUnlock()
                throw error
            }
            counters.bumpMemberGeneration()
            return SharedSession(
                member: member, groupID: groupID, claims: claims, counters: counters, channel: channel,
                membersDirectory: membersDirectory)
        } catch {
            claims.close()
            counters.unmap()
            throw error
        }
    }

    /// Wakes every other member (re-reading the member list when it changed).
    func notifyOthers() {
        let generation = counters.memberGeneration
        if notifier.needsMembers(generation: generation),
           let members = try? claims.read({ (table) throws(LMDBError) in try table.members() }) {
            notifier.update(members: members, generation: generation)
        }
        notifier.notify()
    }

    /// Leaves the group: releases this member's claims, unlists it and deletes its published
    /// statistics (its counters must be kept first, see ``LMDBStore/keepOwnStatistics()``), wakes
    /// the others (so they claim what it released), removes its files and closes everything.
    /// Errors are ignored: whatever is left behind is released by the survivors' reaper, or by the
    /// next group's reset.
    func leave() {
        _ = try? claims.write { (table) throws(any Error) in
            try table.releaseAll(member: member.id)
            try table.remove(member: member.id)
            try table.removePublishedStatistics(of: member.id)
        }
        counters.bumpMemberGeneration()
        notifyOthers()
        channel.removeFilesAndUnlock()
        notifier.close()
        claims.close()
    }
}
