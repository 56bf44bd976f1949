/// One call of a message listener, bound to the task that runs it while the listener runs.
///
/// `close()` and `stop()` wait for a listener in progress; called from inside that very listener
/// they would wait for themselves. ``current`` lets them tell: it follows the listener's task across
/// actor hops and into its child tasks, where a thread check would not. The `number` tells this call
/// from a later one of the same session (a task the listener started may outlive it).
struct ListenerCall: Sendable {
    /// The listener call the current task is running, if any.
    @TaskLocal static var current: ListenerCall?

    /// The consumer whose listener is called.
    let consumer: MessageConsumer
    /// The call's number within its session.
    let number: UInt64

    /// The session running the call.
    var session: Session { consumer.session }
}
