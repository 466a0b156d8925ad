//! [`AsyncLogger`]: the handle of a running logger, and its `log::Log` implementation.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;

use super::backend;
use super::line::{self, Clock};
use super::shared::{Done, Shared};
use super::sink::Sink;
use super::staging::LOCAL;

/// Counters of a logger, as returned by [`AsyncLogger::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoggerStats {
    /// Lines dropped because their thread's buffer was full, as reported by the backend so far.
    pub dropped: u64,
    /// Failed writes or flushes of the sink.
    pub sink_errors: u64,
}

/// The asynchronous logger: a `log::Log` whose lines a backend thread writes to a sink.
///
/// Build it with [`LoggerBuilder`](super::LoggerBuilder): [`build`](super::LoggerBuilder::build) gives a logger you call
/// directly (any number of them), [`init`](super::LoggerBuilder::init) installs one as the global
/// `log` logger. Every method may be called from any thread. Dropping it runs
/// [`shutdown`](Self::shutdown).
pub struct AsyncLogger {
    /// Shared with the producers and the backend.
    pub(super) shared: Arc<Shared>,
    /// The backend thread, joined by `shutdown`.
    backend: Mutex<Option<JoinHandle<()>>>,
}

impl AsyncLogger {
    /// Starts the backend thread for `shared`.
    pub(super) fn start(shared: Shared) -> std::io::Result<AsyncLogger> {
        let shared = Arc::new(shared);
        let s = shared.clone();
        let handle = std::thread::Builder::new().name("kingpin-logger".into()).spawn(move || backend::run(s))?;
        Ok(AsyncLogger { shared, backend: Mutex::new(Some(handle)) })
    }

    /// The current level filter.
    pub fn level(&self) -> LevelFilter {
        level_from_usize(self.shared.level.load(Ordering::Relaxed))
    }

    /// Sets the level filter at run time; for the global logger also `log::set_max_level`.
    ///
    /// # Examples
    ///
    /// ```
    /// let logger = kingpin::logger::LoggerBuilder::new().env_var(None).build().unwrap();
    /// logger.set_level(log::LevelFilter::Debug);
    /// assert_eq!(logger.level(), log::LevelFilter::Debug);
    /// ```
    pub fn set_level(&self, level: LevelFilter) {
        self.shared.level.store(level as usize, Ordering::Relaxed);
        if self.shared.global.load(Ordering::Relaxed) {
            log::set_max_level(level);
        }
    }

    /// Writes everything logged before the call to the sink and flushes the sink, waiting at
    /// most the builder's flush timeout. Returns `false` if that time ran out (a stalled sink).
    ///
    /// Through an `Arc<AsyncLogger>` with `log::Log` in scope, `arc.flush()` resolves to
    /// `Log::flush` (which returns nothing); call `AsyncLogger::flush(&arc)` to get the result.
    pub fn flush(&self) -> bool {
        self.flush_within(self.shared.flush_timeout)
    }

    /// Like [`flush`](Self::flush), waiting at most `timeout`.
    pub fn flush_within(&self, timeout: Duration) -> bool {
        if self.shared.stopped.load(Ordering::Acquire) {
            return self.sync_sink(|sink| sink.flush().is_ok());
        }
        let target = {
            let mut w = self.shared.wake.lock();
            w.flush_req += 1;
            w.pending = true;
            self.shared.wake_cv.notify_one();
            w.flush_req
        };
        self.wait_done(timeout, |d| d.flushed >= target || d.stopped)
    }

    /// Writes and flushes everything, stops the backend thread and returns `true` once it has
    /// exited (waiting at most the flush timeout, after which it is left to finish alone).
    /// Lines logged afterwards are written synchronously. Calling it again does nothing.
    pub fn shutdown(&self) -> bool {
        let Some(handle) = self.backend.lock().take() else {
            return true;
        };
        {
            let mut w = self.shared.wake.lock();
            w.stopping = true;
            self.shared.wake_cv.notify_one();
        }
        let exited = self.wait_done(self.shared.flush_timeout, |d| d.stopped);
        if exited {
            let _ = handle.join();
        }
        exited
    }

    /// The logger's counters.
    pub fn stats(&self) -> LoggerStats {
        LoggerStats {
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            sink_errors: self.shared.sink_errors.load(Ordering::Relaxed),
        }
    }

    /// Waits until `cond` holds for the backend's progress, at most `timeout`.
    fn wait_done(&self, timeout: Duration, cond: impl Fn(&Done) -> bool) -> bool {
        let deadline = crate::base::timer::after(Instant::now(), timeout);
        let mut d = self.shared.done.lock();
        while !cond(&d) {
            if self.shared.done_cv.wait_until(&mut d, deadline).timed_out() {
                return cond(&d);
            }
        }
        true
    }

    /// Runs `f` on the sink after shutdown; gives up (returns `false`) if the sink stays busy.
    fn sync_sink(&self, f: impl FnOnce(&mut Sink) -> bool) -> bool {
        match self.shared.sink.try_lock_for(Duration::from_secs(1)) {
            Some(mut sink) => {
                let ok = f(&mut sink);
                if !ok {
                    self.shared.sink_error();
                }
                ok
            }
            None => false,
        }
    }

    /// Formats a line with only the thread id in its thread field.
    fn format_plain(record: &Record<'_>) -> Vec<u8> {
        let mut line = Vec::with_capacity(128);
        let thread = line::thread_field(crate::sys::gettid(), None);
        let (level, target) = (record.level(), record.target());
        line::write_line(&mut line, &mut Clock::new(), SystemTime::now(), level, &thread, target, record.args());
        line
    }

    /// After shutdown: writes the line to the sink from the calling thread.
    fn log_sync(&self, record: &Record<'_>) {
        let line = Self::format_plain(record);
        self.sync_sink(|sink| sink.write_all(&line).and_then(|()| sink.flush()).is_ok());
    }

    /// Where the thread-local cannot be used: goes through the shared orphan buffer.
    fn log_orphan(&self, record: &Record<'_>) {
        let line = Self::format_plain(record);
        if !self.shared.orphan.append(&*self.shared, |buf| buf.extend_from_slice(&line)) {
            self.sync_sink(|sink| sink.write_all(&line).and_then(|()| sink.flush()).is_ok());
        }
    }
}

impl Log for AsyncLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() as usize <= self.shared.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if self.shared.stopped.load(Ordering::Acquire) {
            return self.log_sync(record);
        }
        let taken = LOCAL.try_with(|l| l.try_borrow_mut().ok().map(|mut l| l.append(&*self.shared, record)));
        match taken {
            Ok(Some(true)) => {}
            Ok(Some(false)) => self.log_sync(record),
            _ => self.log_orphan(record),
        }
    }

    fn flush(&self) {
        AsyncLogger::flush(self);
    }
}

impl Drop for AsyncLogger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for AsyncLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncLogger")
            .field("level", &self.level())
            .field("blocking", &self.shared.blocking)
            .field("capacity", &self.shared.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The inverse of `LevelFilter as usize`.
fn level_from_usize(n: usize) -> LevelFilter {
    [LevelFilter::Off, LevelFilter::Error, LevelFilter::Warn, LevelFilter::Info, LevelFilter::Debug]
        .get(n)
        .copied()
        .unwrap_or(LevelFilter::Trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_round_trips_through_usize() {
        for l in LevelFilter::iter() {
            assert_eq!(level_from_usize(l as usize), l);
        }
    }
}
