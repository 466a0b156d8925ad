//! Facts about the calling thread.

/// The calling thread's kernel thread id (for log lines).
pub(crate) fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u64 }
}

/// Blocks `SIGPIPE` in the calling thread (and the threads it starts later). A `sendfile` to a
/// peer that has gone raises it (it has no `MSG_NOSIGNAL`), and its default action kills the
/// process: a host that did not ignore it (any C or C++ program) would die with one client.
/// Blocked, the signal stays pending on the thread and the call fails with `EPIPE`.
///
/// # Errors
/// When `pthread_sigmask` fails (it does not, for a valid signal).
pub(crate) fn block_sigpipe() -> std::io::Result<()> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)
}

/// Returns the memory the allocator holds free to the system (`malloc_trim(0)`, glibc): after
/// a burst of connections left, their freed buffers would otherwise stay resident, kept for
/// reuse. A no-op with other C libraries.
pub(crate) fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes a plain size and only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
