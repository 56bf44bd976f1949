/// When a persistent store's commit counts as done: the trade-off between safety and speed, shared by
/// every disk engine (`LMDBStore`, ``FileStore``).
///
/// | mode | a commit returns | process crash | power loss / kernel crash |
/// | --- | --- | --- | --- |
/// | ``sync`` | after the sync of the write that carried it (concurrent commits share it) | nothing lost | nothing lost |
/// | ``groupCommit`` | as sync, after waiting 200 µs for others to join its write | nothing lost | nothing lost |
/// | ``osBuffered`` | once the OS has the data; it writes later | nothing lost | the last commits may be lost |
///
/// An open set of values (not an enum), so modes can be added without breaking code that switches
/// on them. Each store's documentation says what a sync costs it.
public struct StoreDurability: Sendable, Hashable, CustomStringConvertible {
    enum Mode: Sendable, Hashable {
        case sync, groupCommit, osBuffered
    }

    let mode: Mode

    /// Every commit is on disk before the store's `commit` returns: the default, so a send that
    /// returned is on disk. Commits that arrive while another is being written are written together
    /// after it, with one sync for all of them. When commits have been arriving concurrently (a
    /// producer's send and a consumer's acknowledgement, say), the committer that writes next waits
    /// at most 250 µs for the ones it expects, so they share a sync instead of taking turns; a lone
    /// committer never waits.
    public static let sync = StoreDurability(mode: .sync)

    /// As ``sync``, and the committer that writes a group first waits 200 µs for more commits to join
    /// it: more commits per sync under concurrent load, for that much added latency. Each commit
    /// still returns only when it is on disk.
    public static let groupCommit = StoreDurability(mode: .groupCommit)

    /// No sync on commit: the operating system puts the data on disk when it likes, and the store
    /// syncs when it closes. A crash of the process loses nothing (the data is in the OS cache); a
    /// power loss or kernel crash can lose the commits of the last moments.
    public static let osBuffered = StoreDurability(mode: .osBuffered)

    /// `sync`, `groupCommit` or `osBuffered`.
    public var description: String {
        switch mode {
        case .sync: "sync"
        case .groupCommit: "groupCommit"
        case .osBuffered: "osBuffered"
        }
    }
}
