//! [`Command`]: what other threads ask a loop to do. The loop's mailbox carries them, and is
//! both the [`Inbox`] of connection handles and the [`Remote`] of loop handles.

use std::time::Instant;

use super::handler::{IoHandler, Remote, Task};
use super::mailbox::Mailbox;
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
pub(crate) type LoopMailbox<H> = Mailbox<Command<H>>;

impl<H: IoHandler> Inbox for LoopMailbox<H> {
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error> {
        self.push(Command::Conn(cmd))
    }

    fn wake(&self) {
        self.waker().wake();
    }
}

impl<H: IoHandler> Remote<H> for LoopMailbox<H> {
    fn run(&self, task: Task<H>) -> Result<(), Error> {
        self.push(Command::Run(task))
    }

    fn shutdown(&self, deadline: Instant) -> Result<(), Error> {
        self.push(Command::Shutdown(deadline))
    }
}
