import Conveyor
import ConveyorDemos
import Foundation
import Testing

/// Runs every demo of `conveyor demo` and checks the facts it narrates.
extension HeavyTests {
@Suite("Demos", .serialized, .timeLimit(.minutes(2)))
struct DemoTests {
    /// Runs the demo called `name` with a silent narrator that keeps the transcript.
    func run(_ name: String) async throws -> (DemoReport, [String]) {
        let demo = try #require(DemoCatalogue.named(name), "no demo called \(name)")
        let narrator = Narrator.silent()
        let launcher = ConveyorExecutable.locate().map { ChildLauncher(executable: $0, arguments: ["demo-child"]) }
        let report = try await demo.run(narrator: narrator, environment: DemoEnvironment(childLauncher: launcher))
        #expect(!narrator.transcript.isEmpty, "the \(name) demo narrates a timeline")
        return (report, narrator.transcript)
    }

    @Test func catalogueHasOneDemoPerModel() {
        let names = DemoCatalogue.all.map(\.name)
        #expect(names == [
            "point-to-point", "publish-subscribe", "durable-subscription", "async-processing", "peak-shaving",
            "decoupling", "acknowledge", "transactions", "message-groups", "durability",
        ])
        #expect(Set(names).count == names.count)
        for demo in DemoCatalogue.all { #expect(!demo.summary.isEmpty && !demo.summary.contains("\n")) }
        #expect(DemoCatalogue.named("POINT-TO-POINT")?.name == "point-to-point")
        #expect(DemoCatalogue.named("nope") == nil)
    }

    @Test func pointToPointDeliversEachOrderToExactlyOneWorker() async throws {
        let (report, _) = try await run("point-to-point")
        #expect(report["sent"] == 8)
        #expect(report["received"] == 8)
        #expect(report["distinct"] == 8, "no order processed twice")
        #expect(report["dequeued"] == 8)
        #expect(report["left"] == 0)
        #expect(Set(report.allReceived) == Set((1...8).map { "order #\($0)" }))
        #expect(report.received.keys.sorted() == ["worker-fast", "worker-slow"], "both workers took part")
        #expect((report.received["worker-fast"]?.count ?? 0) >= (report.received["worker-slow"]?.count ?? 0))
    }

    @Test func publishSubscribeFansOutToEverySubscriber() async throws {
        let (report, _) = try await run("publish-subscribe")
        let all = ["AAPL 189.20", "AAPL 189.45", "AAPL 188.90", "AAPL 190.00"]
        for subscriber in ["dashboard", "alerts", "audit-log"] {
            #expect(report.received[subscriber] == all, "\(subscriber) got every price in order")
            #expect(report[subscriber] == 4)
        }
        #expect(report.received["late-joiner"] == ["AAPL 190.00"], "a late subscriber sees only what comes after it joined")
    }

    @Test func durableSubscriptionCatchesUpAfterOfflineAndRestart() async throws {
        let (report, _) = try await run("durable-subscription")
        #expect(report["heldWhileOffline"] == 3)
        #expect(report["heldAfterRestart"] == 3)
        #expect(report["caughtUp"] == 3)
        #expect(report.received["billing"] == ["invoice #1", "invoice #2", "invoice #3", "invoice #4"])
    }

    @Test func asyncProcessingRunsMailAndSMSForEveryRegistration() async throws {
        let (report, _) = try await run("async-processing")
        #expect(report["registrations"] == 3)
        #expect(report["mails"] == 3)
        #expect(report["sms"] == 3)
        #expect(Set(report.received["mail-service"] ?? []) == ["alice", "bob", "carol"])
        #expect(Set(report.received["sms-service"] ?? []) == ["alice", "bob", "carol"])
    }

    @Test func peakShavingRejectsTheOverflowAndProcessesTheRest() async throws {
        let (report, transcript) = try await run("peak-shaving")
        #expect(report["buyers"] == 30)
        #expect(report["accepted"] == 10, "the bounded queue holds 10")
        #expect(report["rejected"] == 20)
        #expect(report["processed"] == 10)
        #expect(report["tokensUsed"] == 10, "one token per processed order")
        #expect(report["left"] == 0)
        #expect(transcript.contains { $0.contains("refused") })
    }

    @Test func decouplingDeliversEveryOrderToEverySystem() async throws {
        let (report, _) = try await run("decoupling")
        let orders = ["order 1001", "order 1002", "order 1003", "order 1004"]
        #expect(report["published"] == 4)
        #expect(report["heldForAnalytics"] == 4, "analytics' subscription kept the orders while it was down")
        for system in ["inventory", "points", "analytics"] {
            #expect(report.received[system] == orders, "\(system) got every order, in order")
        }
    }

    @Test func acknowledgeModesRedeliverAndDeadLetterThePoisonMessage() async throws {
        let (report, _) = try await run("acknowledge")
        #expect(report["autoAcknowledged"] == 1)
        #expect(report["redeliveredAfterRecover"] == 2)
        #expect(report["poisonDeliveries"] == 3, "maximumRedeliveries 2: three deliveries in all")
        #expect(report["deadLettered"] == 1)
        #expect(report["deadLetterQueueReceived"] == 1)
        #expect(report.received["operator"] == ["payment #4 (malformed)"])
        #expect(report.received["client"] == ["payment #2", "payment #3", "payment #5"])
        #expect(report["left"] == 0)
    }

    @Test func transactionsRollBackAndCommitAtomically() async throws {
        let (report, _) = try await run("transactions")
        #expect(report["shipmentsVisibleBeforeCommit"] == 0)
        #expect(report["ordersAfterRollback"] == 1)
        #expect(report["shipmentsAfterRollback"] == 0)
        #expect(report["redelivered"] == 1)
        #expect(report["ordersAfterCommit"] == 0)
        #expect(report["shipmentsAfterCommit"] == 1)
        #expect(report.received["courier"] == ["shipment for order #7"])
    }

    @Test func messageGroupsKeepEachAccountOnOneConsumerInOrder() async throws {
        let (report, _) = try await run("message-groups")
        #expect(report["sent"] == 12)
        #expect(report["received"] == 12)
        #expect(report["groupsSplitAcrossConsumers"] == 0)
        #expect(report["groupsOutOfOrder"] == 0)
        for account in ["alice", "bob", "carol"] {
            let owners = report.received.filter { $0.value.contains { $0.hasPrefix(account + " ") } }
            #expect(owners.count == 1)
            #expect(owners.first?.value.filter { $0.hasPrefix(account + " ") } == (1...4).map { "\(account) #\($0)" })
        }
    }

    @Test func durabilityKeepsEveryPersistentMessageOfAKilledProcess() async throws {
        guard ConveyorExecutable.locate() != nil else {
            Issue.record("the conveyor executable was not found next to the test bundle; `swift build` builds it")
            return
        }
        let (report, _) = try await run("durability")
        #expect(report["reportedPersistent"] >= 25)
        #expect(report["missingPersistent"] == 0)
        #expect(report["foundPersistent"] >= report["reportedPersistent"])
        #expect(report["foundPersistent"] <= report["reportedPersistent"] + 1, "at most one send may lack its line")
        #expect(report["foundNonPersistent"] == 0, "non-persistent messages die with the process")
        #expect(report["inOrder"] == 1)
    }
}
}

/// Parsing of the CLI's arguments.
extension HeavyTests {
@Suite("Command-line parsing")
struct CommandLineParsingTests {
    @Test func durations() throws {
        #expect(try CommandLineParsing.duration("500ms") == .milliseconds(500))
        #expect(try CommandLineParsing.duration("30s") == .seconds(30))
        #expect(try CommandLineParsing.duration("1.5s") == .milliseconds(1500))
        #expect(try CommandLineParsing.duration("5m") == .seconds(300))
        #expect(try CommandLineParsing.duration("1h") == .seconds(3600))
        #expect(try CommandLineParsing.duration("0s") == .zero)
        #expect(try CommandLineParsing.duration("2S") == .seconds(2))
        for bad in ["", "5", "s", "-5s", "5 parsecs", "5d", "abc", "1.2.3s"] {
            #expect(throws: CommandLineParsing.Failure.self, "\(bad)") { try CommandLineParsing.duration(bad, option: "--ttl") }
        }
        do {
            _ = try CommandLineParsing.duration("5", option: "--ttl")
        } catch {
            #expect(error.message.contains("--ttl") && error.message.contains("500ms, 30s, 5m or 1h"))
        }
        #expect(CommandLineParsing.format(.milliseconds(250)) == "250ms")
        #expect(CommandLineParsing.format(.seconds(30)) == "30s")
        #expect(CommandLineParsing.format(.seconds(300)) == "5m")
    }

    @Test func destinations() throws {
        #expect(try CommandLineParsing.destination("orders").description == "queue://orders")
        #expect(try CommandLineParsing.destination("queue://orders").description == "queue://orders")
        #expect(try CommandLineParsing.destination("topic://prices").description == "topic://prices")
        #expect(try CommandLineParsing.destination("TOPIC://prices").description == "topic://prices")
        do {
            _ = try CommandLineParsing.destination("kafka://orders")
            Issue.record("an unknown scheme was accepted")
        } catch {
            #expect(error.message.contains("unknown destination scheme 'kafka://'"))
        }
        #expect(throws: CommandLineParsing.Failure.self) { try CommandLineParsing.destination("queue://") }
        #expect(throws: CommandLineParsing.Failure.self) { try CommandLineParsing.queue("topic://prices", command: "browse") }
        #expect(try CommandLineParsing.queue("orders", command: "browse").name == "orders")
    }

    @Test func properties() throws {
        #expect(try CommandLineParsing.property("region=EU") == ("region", .string("EU")))
        #expect(try CommandLineParsing.property("total=120") == ("total", .int64(120)))
        #expect(try CommandLineParsing.property("rate=1.5") == ("rate", .double(1.5)))
        #expect(try CommandLineParsing.property("vip=true") == ("vip", .bool(true)))
        #expect(try CommandLineParsing.property("code:string=007") == ("code", .string("007")))
        #expect(try CommandLineParsing.property("n:int=7") == ("n", .int32(7)))
        #expect(try CommandLineParsing.property("note=a=b") == ("note", .string("a=b")))
        #expect(try CommandLineParsing.property("empty=") == ("empty", .string("")))
        for bad in ["noequals", "=value", "1abc=x", "n:int=x", "b:bool=yes", "x:complex=1", "a-b=1"] {
            #expect(throws: CommandLineParsing.Failure.self, "\(bad)") { try CommandLineParsing.property(bad) }
        }
    }
}
}

/// The `conveyor` executable, for the demos that start a child process.
enum ConveyorExecutable {
    static func locate() -> URL? { BuiltExecutable.locate("conveyor") }
}
