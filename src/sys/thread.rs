//! Facts about the calling thread.

/// The calling thread's kernel thread id (for log lines).
pub(crate) fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u64 }
}
