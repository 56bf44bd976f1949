extension Array where Element == UInt64 {
    /// In an array of sequence numbers sorted in ascending order, the position of the first one
    /// above `sequence` (the array's count if there is none): a binary search.
    package func firstIndex(above sequence: UInt64) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle] <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
