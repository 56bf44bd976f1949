import Conveyor
import Testing

@Suite("Request/reply with Requestor", .timeLimit(.minutes(1)))
struct RequestorTests {
    @Test(arguments: StoreKind.allCases)
    func requestGetsItsCorrelatedReply(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let service = Destination.queue(Queue("prices"))
        let serviceSession = try fixture.connection.createSession()
        let requests = try serviceSession.createConsumer(for: service)
        let replier = try serviceSession.createProducer()
        try requests.setMessageListener { request in
            try await Requestor.reply(to: request, with: .text("price of \(request.text ?? "")"), using: replier)
        }
        let requestor = try Requestor(session: try fixture.connection.createSession(), destination: service)
        for item in ["apple", "pear"] {
            let reply = try #require(try await requestor.request(.text(item), timeout: .seconds(2)))
            #expect(reply.text == "price of \(item)")
        }
        requestor.close()
    }

    @Test(arguments: StoreKind.allCases)
    func aLateReplyToATimedOutRequestIsIgnored(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let service = Destination.queue(Queue("slow"))
        let serviceSession = try fixture.connection.createSession()
        let requests = try serviceSession.createConsumer(for: service)
        let replier = try serviceSession.createProducer()
        let requestor = try Requestor(session: try fixture.connection.createSession(), destination: service)
        #expect(try await requestor.request(.text("first"), timeout: .milliseconds(20)) == nil, "nobody answered in time")
        // The service now answers the stale request, then the new one.
        let second = Task { try await requestor.request(.text("second"), timeout: .seconds(2)) }
        let first = try #require(try await requests.receive(timeout: .seconds(1)))
        try await Requestor.reply(to: first, with: .text("answer to first"), using: replier)
        let next = try #require(try await requests.receive(timeout: .seconds(1)))
        try await Requestor.reply(to: next, with: .text("answer to second"), using: replier)
        #expect(try await second.value?.text == "answer to second")
    }

    @Test(arguments: StoreKind.allCases)
    func requestorsNeedANonTransactedSession(kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        defer { fixture.close() }
        let session = try fixture.connection.createSession(.transacted)
        await expectError(.illegalState) { try Requestor(session: session, destination: .queue(Queue("q"))) }
        let request = Message.text("no reply address")
        let producer = try fixture.connection.createSession().createProducer()
        await expectError(.invalidDestination) { try await Requestor.reply(to: request, with: .text("x"), using: producer) }
    }
}
