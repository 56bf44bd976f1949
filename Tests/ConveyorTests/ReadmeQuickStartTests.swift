import Conveyor
import ConveyorLMDB
import Foundation
import Testing

/// The README's quick start, kept compiling and passing here so the README cannot drift.
@Suite("README quick start", .timeLimit(.minutes(1)))
struct ReadmeQuickStartTests {
    @Test func quickStartRunsOnLMDB() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-readme-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        let broker = try Broker(store: LMDBStore(directory: directory.path))
        let connection = try ConnectionFactory(broker: broker).createConnection(clientID: "shop")
        let session = try connection.createSession(.autoAcknowledge)
        let orders = Queue("orders")

        let producer = try session.createProducer(for: .queue(orders))
        let sent = try await producer.send(try Message.text("order #1").with("region", "EU"))

        let consumer = try session.createConsumer(for: .queue(orders), selector: "region = 'EU'")
        try connection.start()
        let message = try #require(try await consumer.receive(timeout: .seconds(1)))
        #expect(message.text == "order #1")
        #expect(message.messageID == sent.messageID)

        let received = Recorder<String>()
        try consumer.setMessageListener { message in received.append(message.text ?? "") }
        try await producer.send(try Message.text("order #2").with("region", "EU"))
        #expect(await received.waitForCount(1))
        #expect(received.all == ["order #2"])
        connection.close()
        broker.close()
    }
}
