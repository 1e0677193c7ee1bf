public import NIOCore

/// Runs Swift tasks on one NIO event loop thread.
///
/// A call's handler task prefers the executor of the connection's event loop, so reading the request, running
/// the handler and writing the reply happen on one thread with no wake-up of another: each hop between the event
/// loop and the concurrency pool costs about 25 µs on a 2-core machine (STYLE.md, section 5). A handler that awaits
/// an actor still runs that actor's code wherever the actor lives, and comes back here afterwards.
///
/// Only for work that finishes: NIO runs queued tasks until none are left before it polls its sockets again, so a
/// task that keeps resuming itself on the loop (a loop of awaits that complete at once) would starve every
/// connection on that loop. Streaming handlers therefore run on the concurrency pool.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop whose thread runs the jobs.
    public let eventLoop: any EventLoop

    /// An executor that runs every job it is given on `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
