import Benchmark
import Conveyor
import Foundation
import Synchronization

/// What the round-trip benchmark keeps open between iterations.
final class RoundTripFixture: Sendable {
    let broker: Broker
    let producer: MessageProducer
    let consumer: MessageConsumer
    let message: Message

    init() throws {
        broker = try Broker(store: MemoryStore())
        let connection = try ConnectionFactory(broker: broker).createConnection()
        let queue = Destination.queue(Queue("conveyor.bench.roundtrip"))
        producer = try connection.createSession(.autoAcknowledge).createProducer(for: queue)
        consumer = try connection.createSession(.autoAcknowledge).createConsumer(for: queue)
        try connection.start()
        var generator = SystemRandomNumberGenerator()
        message = .bytes(Data((0..<128).map { _ in UInt8.random(in: .min ... .max, using: &generator) }))
    }
}

/// Registers the hot-path benchmark: one non-persistent 128-byte message sent to a queue and
/// received from it, on the memory store, in one task — the per-message cost of the broker without
/// any store work or cross-task wake-up.
func roundTripBenchmark() {
    let box = FixtureBox<RoundTripFixture>()
    Benchmark(
        "Send+receive non-persistent (memory)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 10_000),
        closure: { benchmark in
            let fixture = box.get()
            for _ in benchmark.scaledIterations {
                try await fixture.producer.send(fixture.message, options: .nonPersistent)
                guard let received = try await fixture.consumer.receive() else {
                    fatalError("the consumer closed before the message arrived")
                }
                blackHole(received)
            }
        },
        setup: { box.set(try RoundTripFixture()) },
        teardown: {
            box.get().broker.close()
            box.set(nil)
        })
}
