//! [`Inbox`]: the untyped face of a loop's mailbox, through which handles reach a connection
//! (other loops wake it, and workers bring back the outcomes of jobs) from any thread.

use super::job::Outcome;
use crate::base::error::Error;
use crate::base::slab::ConnId;

/// The connection commands a [`crate::ConnHandle`] can send.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    /// Append bytes to the connection's output.
    Send(ConnId, Vec<u8>, Via),
    /// Close the connection after its pending output.
    Close(ConnId),
    /// Shut the connection's write side after its pending output.
    ShutdownWrite(ConnId),
    /// A blocking job's outcome, for the loop's pending job with this key.
    JobDone(ConnId, Outcome),
}

/// Who sent bytes to a connection: a handle counted them as pending for the connection (and
/// the loop uncounts them when it takes them); a loop handle by id did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// A [`crate::ConnHandle`].
    Handle,
    /// A [`crate::LoopHandle`], by id.
    Loop,
}

/// A loop's mailbox as seen from other threads, whatever the loop's handler type.
pub(crate) trait Inbox: Send + Sync {
    /// Queues a command for one of the loop's connections and wakes the loop. Any thread.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the loop has exited; the command is dropped.
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error>;

    /// Wakes the loop without a command (e.g. to hand it the accept mutex). Any thread.
    fn wake(&self);
}
