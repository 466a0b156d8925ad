//! Work off the IO threads: the [`pool::WorkerPool`] and the [`cancel::CancelToken`] its jobs
//! check.

pub(crate) mod cancel;
pub(crate) mod pool;
