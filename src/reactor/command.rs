//! [`Command`]: what other threads ask a loop to do, and [`LoopMailbox`], the loop's mailbox
//! of them — both the [`Inbox`] of connection handles and the [`Remote`] of loop handles.

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

/// The mailbox of a loop whose handler is `H`.
pub(crate) struct LoopMailbox<H: IoHandler>(Mailbox<Command<H>>);

impl<H: IoHandler> LoopMailbox<H> {
    pub(crate) fn new(waker: Waker) -> Self {
        LoopMailbox(Mailbox::new(waker))
    }

    /// The eventfd that wakes the loop.
    pub(crate) fn waker(&self) -> &Waker {
        self.0.waker()
    }

    /// Swaps the queued commands into `out` (which must be empty). Loop thread only.
    pub(crate) fn take(&self, out: &mut Vec<Command<H>>) {
        self.0.take(out);
    }

    /// Refuses further commands and returns what was still queued. Loop thread, at exit.
    pub(crate) fn close(&self) -> Vec<Command<H>> {
        self.0.close()
    }
}

impl<H: IoHandler> Inbox for LoopMailbox<H> {
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error> {
        self.0.push(Command::Conn(cmd))
    }

    fn wake(&self) {
        self.0.waker().wake();
    }
}

impl<H: IoHandler> Remote<H> for LoopMailbox<H> {
    fn run(&self, task: Task<H>) -> Result<(), Error> {
        self.0.push(Command::Run(task))
    }

    fn shutdown(&self, deadline: Instant) -> Result<(), Error> {
        self.0.push(Command::Shutdown(deadline))
    }
}
