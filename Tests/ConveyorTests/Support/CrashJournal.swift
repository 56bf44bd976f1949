@testable import Conveyor
import Foundation

/// What the crash worker's journal says (Sources/ConveyorCrashWorker/main.swift), accumulated over
/// every cycle, with the checks that can be made line by line and those against what the store holds
/// at the end.
///
/// Lines about one durable subscription of the topics mode carry a `sub=<tag>` token (anywhere after
/// the verb); their deliveries and acknowledgements are kept apart per tag, in a ``Consumption``.
/// The crash mode's lines have no token: its consumers share the consumption of tag `nil`.
struct Journal {
    /// What the journal says about the deliveries and acknowledgements of one subscription (or of
    /// the crash mode's queue).
    struct Consumption {
        /// Messages named by an `ACKING` line: they may have been removed.
        var acking = Set<Int>()
        /// Messages named by an `ACKED` line: removed for good.
        var acked = Set<Int>()
        /// The highest delivery count each delivered message showed.
        var highestDeliveryCount: [Int: Int] = [:]
        /// For a subscription, the highest message number named before its first `SUBSCRIBED` line:
        /// the messages above it were published after it existed. `nil` before that line.
        var subscribedAbove: Int?
        var deliveries = 0
        var redeliveries = 0
        var redeliveriesAfterRestart = 0
        fileprivate var deliveredThisCycle = Set<Int>()
    }

    /// Messages named by a `SENDING` line: they may exist.
    var sending = Set<Int>()
    /// Messages named by a `SENT` line: committed.
    var sent = Set<Int>()
    /// The highest message number named so far; the next worker starts above it.
    var highestNamed = 0
    var cyclesWithWork = 0
    var problems: [String] = []
    /// The consumption of each subscription tag (`a` for `sub=a`), `nil` for lines without a tag.
    private(set) var consumptions: [String?: Consumption] = [:]

    private var workThisCycle = false

    /// The consumption of the subscription with this tag, or of the crash mode's queue (`nil`).
    func consumption(of tag: String? = nil) -> Consumption {
        consumptions[tag] ?? Consumption()
    }

    /// Takes one line of cycle `cycle` into account, noting any problem it shows.
    mutating func apply(_ line: String, cycle: Int) {
        var fields = line.split(separator: " ")
        guard let verb = fields.first else { return }
        var tag: String?
        if let index = fields.firstIndex(where: { $0.hasPrefix("sub=") }) {
            tag = String(fields.remove(at: index).dropFirst("sub=".count))
        }
        switch verb {
        case "READY":
            break
        case "SUBSCRIBED":
            guard let tag else { return problem(cycle, "malformed line '\(line)'") }
            if consumptions[tag, default: Consumption()].subscribedAbove == nil {
                consumptions[tag, default: Consumption()].subscribedAbove = highestNamed
            }
        case "SENDING", "SENT":
            guard fields.count == 2, tag == nil, let range = Self.range(fields[1]) else {
                return problem(cycle, "malformed line '\(line)'")
            }
            if verb == "SENDING" {
                sending.formUnion(range)
                highestNamed = max(highestNamed, range.upperBound)
            } else {
                if !range.allSatisfy(sending.contains) { problem(cycle, "'\(line)' without SENDING") }
                sent.formUnion(range)
                workThisCycle = true
            }
        case "DELIVERED":
            guard fields.count == 4, let n = Int(fields[1]),
                  fields[2].hasPrefix("redelivered="), fields[3].hasPrefix("count="),
                  let count = Int(fields[3].dropFirst("count=".count))
            else { return problem(cycle, "malformed line '\(line)'") }
            delivered(n, redelivered: fields[2] == "redelivered=true", count: count, tag: tag, cycle: cycle)
        case "ACKING", "ACKED":
            guard fields.count == 2 else { return problem(cycle, "malformed line '\(line)'") }
            let numbers = fields[1].split(separator: ",").compactMap { Int($0) }
            if verb == "ACKING" {
                consumptions[tag, default: Consumption()].acking.formUnion(numbers)
            } else {
                if !numbers.allSatisfy(consumption(of: tag).acking.contains) { problem(cycle, "'\(line)' without ACKING") }
                consumptions[tag, default: Consumption()].acked.formUnion(numbers)
                workThisCycle = true
            }
        case "ROLLEDBACK", "RECOVERED":
            break
        default:
            problem(cycle, "unexpected line '\(line)'")
        }
    }

    /// A `DELIVERED` line: checks the message may exist for that consumer, and its redelivery flag and
    /// count against the ones it showed before.
    private mutating func delivered(_ n: Int, redelivered: Bool, count: Int, tag: String?, cycle: Int) {
        var consumption = consumption(of: tag)
        defer { consumptions[tag] = consumption }
        let on = tag.map { " on sub=\($0)" } ?? ""
        consumption.deliveries += 1
        if redelivered { consumption.redeliveries += 1 }
        if !sending.contains(n) { problem(cycle, "message \(n) delivered\(on) but never sent") }
        if tag != nil, n <= consumption.subscribedAbove ?? .max {
            problem(cycle, "message \(n) delivered\(on), but it was not published after the subscription existed")
        }
        if consumption.acked.contains(n) { problem(cycle, "message \(n) delivered\(on) again after it was acknowledged (ACKED)") }
        if count < 1 || redelivered != (count > 1) {
            problem(cycle, "message \(n) delivered\(on) with redelivered=\(redelivered) and deliveryCount=\(count)")
        }
        if let previous = consumption.highestDeliveryCount[n] {
            if !consumption.deliveredThisCycle.contains(n) { consumption.redeliveriesAfterRestart += 1 }
            if !redelivered || count <= previous {
                problem(cycle, """
                    message \(n) was delivered\(on) before (count \(previous)) and not acknowledged; \
                    delivered again with redelivered=\(redelivered) count=\(count)
                    """)
            }
        }
        consumption.highestDeliveryCount[n] = max(consumption.highestDeliveryCount[n] ?? 0, count)
        consumption.deliveredThisCycle.insert(n)
    }

    /// Ends cycle `cycle`: the next lines come from a new process.
    mutating func endCycle(_ cycle: Int) {
        if workThisCycle { cyclesWithWork += 1 }
        workThisCycle = false
        for tag in consumptions.keys { consumptions[tag]?.deliveredThisCycle = [] }
    }

    /// What is wrong with the messages a consumer of the reopened store received (each message number
    /// with every copy of it) for the subscription with this tag, or the crash mode's queue (`nil`):
    /// every message committed (after the subscription existed) and never acknowledged is there once;
    /// nothing acknowledged or never sent is; and every message delivered before comes back flagged
    /// redelivered, with a higher delivery count.
    func storeProblems(_ present: [Int: [Message]], of tag: String? = nil) -> [String] {
        let consumption = consumption(of: tag)
        var failures: [String] = []
        for (n, copies) in present.sorted(by: { $0.key < $1.key }) {
            let message = copies[0]
            if copies.count > 1 { failures.append("message \(n) is stored \(copies.count) times") }
            if !sending.contains(n) { failures.append("message \(n) is stored but was never sent") }
            if consumption.acked.contains(n) { failures.append("message \(n) was acknowledged (ACKED) but is still stored") }
            if message.text != "message \(n)" { failures.append("message \(n) has body \(message.text ?? "nil")") }
            if let count = consumption.highestDeliveryCount[n], !(message.redelivered && message.deliveryCount > count) {
                failures.append("""
                    message \(n) was delivered (count \(count)) and not acknowledged, but comes back with \
                    redelivered=\(message.redelivered) deliveryCount=\(message.deliveryCount)
                    """)
            }
        }
        let publishedAbove = tag == nil ? 0 : consumption.subscribedAbove ?? .max
        let committedAndNeverAcknowledged = sent.filter { $0 > publishedAbove }.subtracting(consumption.acking)
        for n in committedAndNeverAcknowledged.sorted() where present[n] == nil {
            failures.append("message \(n) was committed (SENT) and never acknowledged, but is missing")
        }
        return failures
    }

    private mutating func problem(_ cycle: Int, _ text: String) {
        problems.append("cycle \(cycle): \(text)")
    }

    private static func range(_ text: Substring) -> ClosedRange<Int>? {
        let bounds = text.split(separator: ".", omittingEmptySubsequences: true)
        guard bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low <= high else { return nil }
        return low...high
    }
}
