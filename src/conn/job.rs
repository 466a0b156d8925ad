//! Blocking work for a connection or a loop, run on the worker pool and completed on the loop:
//! the table of jobs a loop waits for ([`PendingJob`]; queued with `Env::submit_job`), and
//! [`JobError`], what its completion hears when the work gave no value.
//!
//! ```text
//!  IO thread: submit ──▶ env.jobs[key] = {conn, cancel, finish}   (finish: typed by the loop)
//!                  └──▶ worker pool: outcome = catch_unwind(job(&cancel))
//!                                    └──▶ inbox: JobDone(key, outcome) ──▶ loop: jobs[key].finish
//! ```
//!
//! The completion (`finish`) never leaves the loop's thread; only the job and its outcome
//! travel. Each pending job is completed exactly once: by its outcome, or — the loop exiting
//! first — with [`JobError::Shutdown`]. The table's keys carry a generation, like connection
//! ids, so a late outcome can never reach another job.

use std::any::Any;
use std::fmt;

use crate::base::slab::ConnId;
use crate::work::cancel::CancelToken;

/// Why a blocking job gave no value to its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the panic message. The worker lives on.
    Panicked(String),
    /// The server or client shut down before the job could run or finish (or, for a job still
    /// running at the shutdown deadline, before its value came back).
    Shutdown,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(msg) => write!(f, "the job panicked: {msg}"),
            JobError::Shutdown => f.write_str("shut down before the job's value came back"),
        }
    }
}

impl std::error::Error for JobError {}

/// A job the loop waits for.
pub(crate) struct PendingJob {
    /// The connection it was started for (`None`: for the loop).
    pub(crate) conn: Option<ConnId>,
    /// Fired when that connection closes, so the job can stop early.
    pub(crate) cancel: CancelToken,
    /// The completion, typed by the loop's handler (the reactor knows its type).
    pub(crate) finish: Box<dyn Any>,
}

/// What a job's outcome is carried as, from the worker to the loop: a `Result<T, JobError>`.
pub(crate) type Outcome = Box<dyn Any + Send>;

/// The outcome of a job whose value is a `T`: as the worker sent it, or `Shutdown` (`None`:
/// the loop completes it before it came back).
pub(crate) fn outcome<T: 'static>(outcome: Option<Outcome>) -> Result<T, JobError> {
    match outcome.map(|o| o.downcast::<Result<T, JobError>>()) {
        Some(Ok(result)) => *result,
        // Keys carry a generation and each job has its own completion, so the types match.
        Some(Err(_)) => unreachable!("a job's outcome has its completion's type"),
        None => Err(JobError::Shutdown),
    }
}
