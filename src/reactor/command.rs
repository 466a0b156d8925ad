//! [`Command`]: what other threads ask a loop to do, and [`LoopMailbox`], the loop's mailbox
//! of them — both the [`Inbox`] of connection handles and the [`Remote`] of loop handles.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use super::handler::{IoHandler, Remote, Task};
use super::mailbox::Mailbox;
use super::waker::Waker;
use crate::base::error::Error;
use crate::conn::inbox::{ConnCommand, Inbox};

/// What another thread can ask a loop to do.
pub(crate) enum Command<H: IoHandler> {
    /// A command for one connection (from a handle or a [`crate::LoopHandle`]).
    Conn(ConnCommand),
    /// Run a closure on the loop.
    Run(Task<H>),
    /// Stop accepting, drain and close every connection by the deadline, then exit.
    Shutdown(Instant),
}

impl<H: IoHandler> Command<H> {
    /// The bytes a send carries (zero for other commands).
    fn bytes(&self) -> usize {
        match self {
            Command::Conn(ConnCommand::Send(_, data, _)) => data.len(),
            _ => 0,
        }
    }
}

/// The mailbox of a loop whose handler is `H`.
pub(crate) struct LoopMailbox<H: IoHandler> {
    queue: Mailbox<Command<H>>,
    /// Bytes of the sends waiting in the queue (counted by the memory budget).
    bytes: AtomicUsize,
}

impl<H: IoHandler> LoopMailbox<H> {
    pub(crate) fn new(waker: Waker) -> Self {
        LoopMailbox { queue: Mailbox::new(waker), bytes: AtomicUsize::new(0) }
    }

    /// Bytes of the sends waiting in the mailbox.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    /// The eventfd that wakes the loop.
    pub(crate) fn waker(&self) -> &Waker {
        self.queue.waker()
    }

    /// Swaps the queued commands into `out` (which must be empty). Loop thread only.
    pub(crate) fn take(&self, out: &mut Vec<Command<H>>) {
        self.queue.take(out);
        let taken: usize = out.iter().map(Command::bytes).sum();
        if taken > 0 {
            self.bytes.fetch_sub(taken, Relaxed);
        }
    }

    /// Refuses further commands and returns what was still queued. Loop thread, at exit.
    pub(crate) fn close(&self) -> Vec<Command<H>> {
        self.queue.close()
    }
}

impl<H: IoHandler> Inbox for LoopMailbox<H> {
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error> {
        let cmd = Command::Conn(cmd);
        let bytes = cmd.bytes();
        // Counted before the push, so the loop never takes more than was counted.
        self.bytes.fetch_add(bytes, Relaxed);
        let pushed = self.queue.push(cmd);
        if pushed.is_err() {
            self.bytes.fetch_sub(bytes, Relaxed);
        }
        pushed
    }

    fn wake(&self) {
        self.queue.waker().wake();
    }
}

impl<H: IoHandler> Remote<H> for LoopMailbox<H> {
    fn run(&self, task: Task<H>) -> Result<(), Error> {
        self.queue.push(Command::Run(task))
    }

    fn shutdown(&self, deadline: Instant) -> Result<(), Error> {
        self.queue.push(Command::Shutdown(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::slab::ConnId;
    use crate::conn::inbox::Via;
    use crate::conn::view::Conn;

    struct Nop;

    impl IoHandler for Nop {
        type ConnState = ();

        fn on_message(&mut self, _conn: &mut Conn<'_>) {}
    }

    /// The bytes of queued sends are counted until the loop takes them (the memory budget
    /// adds them to what the loop holds); other commands and refused sends count nothing.
    #[test]
    fn queued_send_bytes_are_counted_until_taken() {
        let mb = LoopMailbox::<Nop>::new(Waker::new().unwrap());
        let id = ConnId::new(0, 0);
        mb.push_conn(ConnCommand::Send(id, vec![0; 100], Via::Handle)).unwrap();
        mb.push_conn(ConnCommand::Send(id, vec![0; 50], Via::Loop)).unwrap();
        mb.push_conn(ConnCommand::Close(id)).unwrap();
        assert_eq!(mb.queued_bytes(), 150);
        let mut out = Vec::new();
        mb.take(&mut out);
        assert_eq!((out.len(), mb.queued_bytes()), (3, 0));
        mb.push_conn(ConnCommand::Send(id, vec![0; 7], Via::Handle)).unwrap();
        drop(mb.close());
        assert!(mb.push_conn(ConnCommand::Send(id, vec![0; 9], Via::Handle)).is_err());
        assert_eq!(mb.queued_bytes(), 7, "a refused send is not counted");
    }
}
