@testable import Conveyor
import Testing

/// `SequenceMap`, the memory store's per-queue index, checked against a dictionary model: inserts in
/// and out of order, removals anywhere (gaps, compaction), updates and range reads.
@Suite("Sequence map")
struct SequenceMapTests {
    /// The map's contents in order, read through `elements(after:limit:)`.
    private func contents(_ map: SequenceMap<String>) -> [UInt64: String] {
        Dictionary(uniqueKeysWithValues: map.elements(after: 0, limit: .max).map { ($0.sequence, $0.value) })
    }

    @Test func insertsInAndOutOfOrderReadBackInOrder() {
        var map = SequenceMap<String>()
        for sequence: UInt64 in [5, 6, 7, 2, 9, 1, 8, 3] { map.insert("v\(sequence)", for: sequence) }
        map.insert("again", for: 7)
        #expect(map.count == 8)
        #expect(map.elements(after: 0, limit: .max).map(\.sequence) == [1, 2, 3, 5, 6, 7, 8, 9])
        #expect(map.elements(after: 3, limit: 2).map(\.sequence) == [5, 6])
        #expect(map.elements(after: 9, limit: 10).isEmpty)
        #expect(map.elements(after: .max, limit: 10).isEmpty)
        #expect(contents(map)[7] == "again")
    }

    @Test func removalsAndUpdatesAnywhere() {
        var map = SequenceMap<String>()
        for sequence: UInt64 in 1...10 { map.insert("v\(sequence)", for: sequence) }
        let removals = [5, 5, 42, 1, 10].map { map.removeValue(for: $0) }
        #expect(removals == [true, false, false, true, true])
        let updates = [map.update(6) { $0 = "changed" }, map.update(5) { $0 = "gone" }]
        #expect(updates == [true, false])
        #expect(map.count == 7)
        #expect(map.elements(after: 0, limit: .max).map(\.sequence) == [2, 3, 4, 6, 7, 8, 9])
        #expect(contents(map)[6] == "changed")
        // A removed sequence can come back.
        map.insert("back", for: 5)
        #expect(map.elements(after: 4, limit: 1).map(\.value) == ["back"])
        // Sequence 0 is a key like any other.
        map.insert("zero", for: 0)
        let zeroUpdated = map.update(0) { $0 += "!" }
        let zeroRemoved = map.removeValue(for: 0)
        #expect(zeroUpdated && zeroRemoved)
        var visited: [String] = []
        map.forEach { visited.append($0) }
        #expect(visited.count == map.count)
    }

    @Test func matchesADictionaryUnderRandomOperations() {
        var random = SplitMix64(seed: 7)
        var map = SequenceMap<String>()
        var model: [UInt64: String] = [:]
        for step in 0..<2_000 {
            let sequence = random.next() % 300 + 1
            switch random.next() % 4 {
            case 0, 1:
                map.insert("s\(step)", for: sequence)
                model[sequence] = "s\(step)"
            case 2:
                let removed = map.removeValue(for: sequence)
                #expect(removed == (model.removeValue(forKey: sequence) != nil))
            default:
                let updated = map.update(sequence) { $0 += "!" }
                #expect(updated == (model[sequence] != nil))
                model[sequence]? += "!"
            }
            #expect(map.count == model.count)
        }
        #expect(contents(map) == model)
        #expect(map.elements(after: 0, limit: .max).map(\.sequence) == model.keys.sorted())
    }
}
