import Conveyor
import Foundation
import Logging
import Synchronization

/// Statistics across the processes sharing a store (``Sharing/processes``).
///
/// How the counters travel:
/// - Each process hands the store its counters (``shareStatistics(_:)``). The watcher thread
///   publishes them every 250 ms, when they changed, as one value in the claims environment
///   (``PublishedStatistics``): unsynced, so publishing costs no disk flush, and no commit of
///   messages ever waits for it.
/// - The cumulative counters are *kept* in the main environment (``KeptStatisticsTable``), each
///   process's folded in once, in one write transaction: by the process itself when it closes the
///   store (``keepOwnStatistics()``), by the survivor that reaps it when it dies (what it last
///   published: at most 250 ms of counting is lost), or, when nobody was left to reap it, by the
///   first process of the next group before it resets the claims environment.
/// - Readers (``countersBeyondThisProcess()``) add the kept totals and what the other live members
///   published; a fold mark tells them which published counters are already in the totals.
extension LMDBStore {
    /// What ``shareStatistics(_:)`` was given, and what was last published.
    struct StatisticsSharing {
        var source: (@Sendable () -> [StoreQueueKey: DestinationCounters])?
        var published: [StoreQueueKey: DestinationCounters] = [:]
    }

    /// One member's counters to fold into the kept totals.
    struct StatisticsFold {
        var member: UInt64
        var counters: [StoreQueueKey: DestinationCounters]
    }

    /// Remembers where this process's counters come from, to publish them to the other processes
    /// and keep them when the store closes. Does nothing with ``Sharing/singleProcess``, whose
    /// broker counts for itself alone.
    /// - Parameter counters: This process's counters since the broker opened the store (see
    ///   ``SharedMessageStore/shareStatistics(_:)``). Must not call the store.
    public func shareStatistics(_ counters: @escaping @Sendable () -> [StoreQueueKey: DestinationCounters]) {
        guard isSharedAcrossProcesses else { return }
        statisticsSharing.withLock { $0 = StatisticsSharing(source: counters) }
    }

    /// The kept totals plus what every other live member of the group published, by queue and
    /// subscription. Published counters already folded into the totals (their member is closing
    /// or was just reaped) are counted once.
    /// - Throws: ``ConveyorError/Code/storage`` if the store is closed or cannot be read.
    public func countersBeyondThisProcess() throws(ConveyorError) -> [StoreQueueKey: DestinationCounters] {
        // Published first, totals second: a member folded in between is marked by then.
        let group = try session.withLock { (session) throws(ConveyorError) -> (own: UInt64, id: UInt64, published: [UInt64: [StoreQueueKey: DestinationCounters]])? in
            guard let session else { return nil }
            let published = try session.claims.read { (table) throws(LMDBError) in try table.publishedStatistics() }
            return (session.member.id, session.groupID, published)
        }
        return try core.withLock { (core) throws(ConveyorError) -> [StoreQueueKey: DestinationCounters] in
            guard let environment = core.environment else { throw closedError() }
            let databases = environment.databases
            let after = core.lastDestinationID
            let (totals, added, folded) = try environment.read { (transaction) throws(any Error) in
                let table = KeptStatisticsTable(transaction: transaction, databases: databases)
                var folded: Set<UInt64> = []
                if let group {
                    for member in group.published.keys where try table.isFolded(member: member, group: group.id) {
                        folded.insert(member)
                    }
                }
                return (try table.totals(), try transaction.destinations(after: after, in: databases.destinations), folded)
            }
            for (key, id) in added {
                core.destinations[key] = id
                core.lastDestinationID = max(core.lastDestinationID, id)
            }
            var keysByID: [UInt64: StoreQueueKey] = [:]
            for (key, id) in core.destinations where totals[id] != nil { keysByID[id] = key }
            var result: [StoreQueueKey: DestinationCounters] = [:]
            for (id, counters) in totals {
                if let key = keysByID[id] { result[key, default: .zero].add(counters) }
            }
            for (member, counters) in group?.published ?? [:] where member != group?.own && !folded.contains(member) {
                for (key, value) in counters { result[key, default: .zero].add(value) }
            }
            return result
        }
    }

    /// Publishes this process's counters if they changed since the last time (the watcher calls
    /// it every 250 ms). A failure is left for the next round.
    func publishStatisticsIfChanged() {
        guard let source = statisticsSharing.withLock({ $0.source }) else { return }
        // The broker's counters are read with no lock of the store held.
        let counters = source().filter { !$0.value.isZero }
        guard counters != statisticsSharing.withLock({ $0.published }) else { return }
        let stored: Bool = session.withLock { session in
            guard let session else { return false }
            return (try? session.claims.write { (table) throws(any Error) in
                try table.publishStatistics(counters, of: session.member.id)
            }) != nil
        }
        if stored { statisticsSharing.withLock { $0.published = counters } }
    }

    /// Folds this process's cumulative counters into the kept totals and forgets the source; the
    /// store calls it when it closes, after the watcher stopped (so nothing publishes any more) and
    /// before leaving the group (which deletes the published counters). A failure loses this
    /// process's counters, and nothing else, and is logged (``Options/logger``).
    func keepOwnStatistics() {
        let source = statisticsSharing.withLock { sharing in
            defer { sharing = StatisticsSharing() }
            return sharing.source
        }
        guard let source else { return }
        let counters = source().compactMapValues { $0.cumulative.isZero ? nil : $0.cumulative }
        guard !counters.isEmpty else { return }
        let context = session.withLock { session -> (member: UInt64, view: GroupView)? in
            guard let session, let view = try? session.claims.read({ (table) throws(LMDBError) in try table.groupView() })
            else { return nil }
            return (session.member.id, view)
        }
        guard let context else { return }
        do throws(ConveyorError) {
            try core.withLock { (core) throws(ConveyorError) in
                try Self.fold(
                    [StatisticsFold(member: context.member, counters: counters)], group: context.view.group,
                    keepingMark: context.view.keepsMark, in: &core, directory: directory)
            }
        } catch {
            options.logger.warning("could not keep this process's statistics while closing; they are lost",
                                   metadata: ["directory": "\(directory)", "error": "\(error)"])
        }
    }

    /// Folds what dead members last published into the kept totals (the reaper calls it before
    /// deleting their published counters with their other rows).
    /// - Throws: ``ConveyorError/Code/storage`` if the claims or the store cannot be read or written;
    ///   the reaper then tries again on its next round.
    func keepStatistics(ofDead members: [GroupMember]) throws(ConveyorError) {
        let found = try session.withLock { (session) throws(ConveyorError) -> (folds: [StatisticsFold], view: GroupView)? in
            guard let session else { return nil }
            return try session.claims.read { (table) throws(LMDBError) -> ([StatisticsFold], GroupView)? in
                guard let view = try table.groupView() else { return nil }
                let published = try table.publishedStatistics()
                let folds = members.compactMap { member in
                    published[member.id].map { StatisticsFold(member: member.id, counters: $0) }
                }
                return (folds, view)
            }
        }
        guard let found, !found.folds.isEmpty else { return }
        try core.withLock { (core) throws(ConveyorError) in
            try Self.fold(found.folds, group: found.view.group, keepingMark: found.view.keepsMark, in: &core, directory: directory)
        }
    }

    /// Folds the counters that members of the previous group published and nobody folded (they
    /// died with nobody left to reap them); the first process of a new group calls it before it
    /// resets the group's files. The marks of that group are kept until the next reset, so that a
    /// crash before this reset finishes does not fold them twice.
    /// - Parameter path: The canonical store directory.
    /// - Throws: ``ConveyorError/Code/storage`` if the store cannot be written. Claims that cannot be
    ///   read are skipped: they are about to be deleted, and hold a few hundred milliseconds of
    ///   counting at most.
    static func keepLeftoverStatistics(of path: String, in core: inout Core) throws(ConveyorError) {
        let claimsPath = SharedSession.sharedDirectory(path) + "/claims"
        guard FileManager.default.fileExists(atPath: claimsPath + "/data.mdb"),
              let claims = try? ClaimsEnvironment.open(path: claimsPath)
        else { return }
        defer { claims.close() }
        let leftover = try? claims.read { (table) throws(LMDBError) -> (group: UInt64, folds: [StatisticsFold])? in
            guard let group = try table.groupID() else { return nil }
            let folds = try table.publishedStatistics().map { StatisticsFold(member: $0.key, counters: $0.value) }
            return (group, folds)
        }
        guard let leftover = leftover ?? nil else { return }
        try fold(leftover.folds, group: leftover.group, keepingMark: { group, _ in group == leftover.group }, in: &core, directory: path)
    }

    /// Adds the cumulative counters of each fold not marked yet to the kept totals and marks it (if
    /// `keepingMark` keeps its mark), skipping queues the store never named and subscriptions
    /// deleted meanwhile, then deletes the marks `keepingMark` does not keep; one write transaction.
    private static func fold(
        _ folds: [StatisticsFold], group: UInt64, keepingMark: (_ group: UInt64, _ member: UInt64) -> Bool,
        in core: inout Core, directory: String
    ) throws(ConveyorError) {
        guard let environment = core.environment else {
            throw ConveyorError(.storage, "the LMDB store at '\(directory)' is closed; open a broker on it first")
        }
        let known = core.destinations
        let after = core.lastDestinationID
        let databases = environment.databases
        try environment.write(action: "keep the statistics of") { (transaction) throws(LMDBError) in
            let table = KeptStatisticsTable(transaction: transaction, databases: databases)
            var added: [StoreQueueKey: UInt64] = [:]
            for (key, id) in try transaction.destinations(after: after, in: databases.destinations) { added[key] = id }
            for fold in folds where try !table.isFolded(member: fold.member, group: group) {
                for (key, counters) in fold.counters where !counters.cumulative.isZero {
                    guard let destination = known[key] ?? added[key] else { continue }
                    if case .subscription = key {
                        let exists = try LMDBKey.with(destination) { (id) throws(LMDBError) in
                            try transaction.get(databases.subscriptions, id) != nil
                        }
                        guard exists else { continue }
                    }
                    try table.add(counters, to: destination)
                }
                if keepingMark(group, fold.member) { try table.markFolded(member: fold.member, group: group) }
            }
            try table.removeMarks(keeping: keepingMark)
        }
    }
}

// MARK: Testing

extension LMDBStore {
    /// Publishes counters as the member `member` (another process, for tests of readers and the
    /// reaper).
    func publishStatisticsForTesting(_ counters: [StoreQueueKey: DestinationCounters], of member: UInt64) throws(ConveyorError) {
        try session.withLock { (session) throws(ConveyorError) in
            guard let session else { throw closedError() }
            try session.claims.write { (table) throws(any Error) in try table.publishStatistics(counters, of: member) }
        }
    }

    /// What this process published last; for tests.
    var publishedStatisticsForTesting: [StoreQueueKey: DestinationCounters] {
        statisticsSharing.withLock { $0.published }
    }

    /// Every member's published counters, as the claims environment holds them; for tests.
    func allPublishedStatisticsForTesting() throws(ConveyorError) -> [UInt64: [StoreQueueKey: DestinationCounters]] {
        try session.withLock { (session) throws(ConveyorError) in
            guard let session else { throw closedError() }
            return try session.claims.read { (table) throws(LMDBError) in try table.publishedStatistics() }
        }
    }
}
