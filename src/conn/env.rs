//! [`Env`]: what a connection borrows from the loop that owns it, besides itself.

use std::any::{Any, TypeId};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::inbox::{ConnCommand, Inbox};
use super::job::{JobError, PendingJob};
use crate::base::error::Error;
use crate::base::panic::panic_message;
use crate::base::slab::{ConnId, Slab};
use crate::base::stats::LoopStats;
use crate::base::timer::TimerQueue;
use crate::io::buffer_pool::BufferPool;
use crate::work::cancel::CancelToken;
use crate::work::pool::{Run, WorkerPool};

/// What a connection timer is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConnTimer {
    /// Set by the user with a tag for `on_timer`.
    User(u64),
    /// Time to check the connection's idle timeouts.
    Idle,
    /// A lingering close has waited long enough for the peer's end.
    Linger,
    /// A TLS handshake has had its time.
    Handshake,
}

/// The services of one IO loop that its connections use: buffers, counters, timers, the
/// mailbox for handles, the worker pool and the jobs waited for, and the time of the current
/// turn. Owned by the loop; lent to a
/// [`crate::Conn`] for the length of a callback.
pub(crate) struct Env {
    /// Index of the loop.
    pub(crate) index: usize,
    /// Recycled buffers, so a busy loop does not allocate per message.
    pub(crate) pool: BufferPool,
    /// Counters readable from other threads.
    pub(crate) stats: Arc<LoopStats>,
    /// The loop's mailbox, for handles.
    pub(crate) inbox: Arc<dyn Inbox>,
    /// Timers of connections: user timers and idle checks.
    pub(crate) timers: TimerQueue<(ConnId, ConnTimer)>,
    /// The time when the current loop turn began.
    pub(crate) now: Instant,
    /// Handles' sends are refused while this much output is pending (the high water mark).
    pub(crate) handle_limit: usize,
    /// The pool that runs blocking jobs.
    pub(crate) workers: WorkerPool,
    /// Jobs queued from this loop whose completion is still to run.
    pub(crate) jobs: Slab<PendingJob>,
    /// The type of the loop's handler: a job's completion is typed by it, so a job started
    /// through another handler type (one handler wrapping another) is refused.
    pub(crate) handler_type: TypeId,
}

impl Env {
    /// Queues `job` on the loop's worker pool for connection `conn` (or the loop), with its
    /// completion `finish`; the outcome comes back through the loop's inbox as
    /// [`ConnCommand::JobDone`].
    ///
    /// # Errors
    /// [`Error::Busy`] (the pool's queue is full) or [`Error::Stopped`]; nothing was queued and
    /// `finish` is dropped uncalled.
    pub(crate) fn submit_job<T, J>(
        &mut self,
        handler: TypeId,
        conn: Option<ConnId>,
        job: J,
        finish: Box<dyn Any>,
    ) -> Result<(), Error>
    where
        T: Send + 'static,
        J: FnOnce(&CancelToken) -> T + Send + 'static,
    {
        if handler != self.handler_type {
            log::error!(
                target: "kingpin::loop",
                "loop {}: spawn_blocking called through a handler type other than the loop's; call it as the loop's handler",
                self.index
            );
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "spawn_blocking must be called as the loop's own handler type (its completion is typed by it)",
            )));
        }
        let cancel = CancelToken::new();
        let key = self.jobs.insert_with(|_| PendingJob { conn, cancel: cancel.clone(), finish });
        let inbox = self.inbox.clone();
        let workers = self.workers.clone();
        let queued = self.workers.submit(Box::new(move |run| {
            let outcome: Result<T, JobError> = match run {
                Run::Now => panic::catch_unwind(AssertUnwindSafe(|| job(&cancel))).map_err(|payload| {
                    let msg = panic_message(&*payload);
                    workers.note_panic(&msg);
                    JobError::Panicked(msg)
                }),
                Run::Abandoned => Err(JobError::Shutdown),
            };
            // A loop that has exited completed the job already (with `Shutdown`).
            let _ = inbox.push_conn(ConnCommand::JobDone(key, Box::new(outcome)));
        }));
        if let Err(e) = queued {
            self.jobs.remove(key);
            return Err(e);
        }
        Ok(())
    }

    /// Fires the cancel token of every pending job (the loop is shutting down).
    pub(crate) fn cancel_all_jobs(&self) {
        for job in self.jobs.values() {
            job.cancel.cancel();
        }
    }

    /// Fires the cancel token of every job started for connection `id` (it is closing).
    pub(crate) fn cancel_jobs_of(&self, id: ConnId) {
        for job in self.jobs.values().filter(|j| j.conn == Some(id)) {
            job.cancel.cancel();
        }
    }
}
