//! Configuration of an [`AsyncLogger`], and installing one as the global `log` logger.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use log::LevelFilter;
use parking_lot::{Condvar, Mutex};

use super::async_logger::AsyncLogger;
use super::line;
use super::shared::{Done, Registry, Shared, Wake};
use super::sink::{Rotation, Sink, SinkTarget};
use super::staging::Producer;

/// The environment variable read by default for the level: `KINGPIN_LOG`.
const DEFAULT_ENV: &str = "KINGPIN_LOG";

/// Ids of loggers, so a thread can tell its registrations apart.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Parses a level name as `KINGPIN_LOG` takes it: `error`, `warn`, `info`, `debug`, `trace` or
/// `off`, in any case, surrounding spaces ignored. `None` for anything else.
///
/// Any thread may call it.
///
/// # Examples
///
/// ```
/// assert_eq!(kingpin::logger::parse_level(" Debug "), Some(log::LevelFilter::Debug));
/// assert_eq!(kingpin::logger::parse_level("loud"), None);
/// ```
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    let s = s.trim();
    [LevelFilter::Off, LevelFilter::Error, LevelFilter::Warn, LevelFilter::Info]
        .into_iter()
        .chain([LevelFilter::Debug, LevelFilter::Trace])
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
}

/// Builds an [`AsyncLogger`]. Defaults: level `Info` (overridden by `KINGPIN_LOG` when set),
/// stderr, drop mode, 1 MiB per thread, flushed every 250 ms, 5 s flush timeout, no rotation.
///
/// Any thread may use it.
///
/// # Examples
///
/// ```
/// use kingpin::logger::LoggerBuilder;
///
/// let dir = std::env::temp_dir().join(format!("kingpin-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let logger = LoggerBuilder::new()
///     .level(log::LevelFilter::Debug)
///     .file(dir.join("app.log"))
///     .rotate(64 << 20, 3)
///     .buffer_capacity(256 << 10)
///     .build()
///     .unwrap();
/// drop(logger); // flushes and stops the backend
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct LoggerBuilder {
    /// Level unless the environment variable says otherwise.
    level: LevelFilter,
    /// Environment variable for the level, if any.
    env_var: Option<String>,
    /// Where lines go.
    target: SinkTarget,
    /// Blocking or drop mode.
    blocking: bool,
    /// Per-thread buffer capacity.
    capacity: usize,
    /// Backend timer.
    interval: Duration,
    /// Bound of flush and shutdown waits.
    flush_timeout: Duration,
    /// File rotation.
    rotation: Option<Rotation>,
}

impl Default for LoggerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LoggerBuilder {
    /// A builder with the defaults listed above.
    pub fn new() -> Self {
        LoggerBuilder {
            level: LevelFilter::Info,
            env_var: Some(DEFAULT_ENV.to_owned()),
            target: SinkTarget::Stderr,
            blocking: false,
            capacity: 1 << 20,
            interval: Duration::from_millis(250),
            flush_timeout: Duration::from_secs(5),
            rotation: None,
        }
    }

    /// The level filter to start with (the environment variable, when set, wins).
    pub fn level(mut self, level: LevelFilter) -> Self {
        self.level = level;
        self
    }

    /// The environment variable that overrides the level (`KINGPIN_LOG` by default); `None`
    /// ignores the environment. An unparsable value is ignored.
    pub fn env_var(mut self, name: Option<&str>) -> Self {
        self.env_var = name.map(str::to_owned);
        self
    }

    /// Writes to standard error (the default).
    pub fn stderr(mut self) -> Self {
        self.target = SinkTarget::Stderr;
        self
    }

    /// Appends to the file at `path`, created if missing when the logger is built.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.target = SinkTarget::File(path.into());
        self
    }

    /// Writes to any writer, e.g. a `Box<dyn Write + Send>`. Only the backend thread calls it.
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.target = SinkTarget::Writer(Box::new(writer));
        self
    }

    /// Blocking mode (`true`): a caller whose buffer is full waits for the backend, so every
    /// line is kept. Drop mode (`false`, the default): the line is dropped and counted.
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// Capacity of each thread's buffer in bytes (at least 1 KiB is used).
    pub fn buffer_capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.max(1024);
        self
    }

    /// How often the backend writes when nothing else wakes it (at least 1 ms).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The longest [`AsyncLogger::flush`] and [`AsyncLogger::shutdown`] wait for the backend.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// For a [`file`](Self::file) sink: before the file would pass `max_bytes`, it becomes
    /// `path.1` (older ones shift to `path.2` … `path.keep_files`, the oldest is deleted) and a
    /// new file starts. Files are cut between lines. Ignored for other sinks.
    pub fn rotate(mut self, max_bytes: u64, keep_files: usize) -> Self {
        self.rotation = Some(Rotation { max_bytes: max_bytes.max(1), keep: keep_files });
        self
    }

    /// Opens the sink and starts the backend thread.
    ///
    /// # Errors
    ///
    /// Opening the file sink, or spawning the backend thread, failed.
    pub fn build(self) -> io::Result<AsyncLogger> {
        let env = self.env_var.as_deref().and_then(|v| std::env::var(v).ok());
        let level = env.as_deref().and_then(parse_level).unwrap_or(self.level);
        let sink = Sink::open(self.target, self.rotation)?;
        AsyncLogger::start(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            level: AtomicUsize::new(level as usize),
            blocking: self.blocking,
            capacity: self.capacity,
            interval: self.interval,
            flush_timeout: self.flush_timeout,
            registry: Mutex::new(Registry { producers: Vec::new(), closed: false }),
            orphan: Producer::new(line::thread_field(0, Some("orphan"))),
            wake: Mutex::new(Wake { pending: false, stopping: false, flush_req: 0 }),
            wake_cv: Condvar::new(),
            done: Mutex::new(Done { flushed: 0, stopped: false }),
            done_cv: Condvar::new(),
            stopped: AtomicBool::new(false),
            sink: Mutex::new(sink),
            dropped: AtomicU64::new(0),
            sink_errors: AtomicU64::new(0),
            global: AtomicBool::new(false),
        })
    }

    /// Builds the logger and installs it as the process's `log` logger (also setting
    /// `log::set_max_level`). Keep the returned guard alive in `main`: dropping it flushes and
    /// stops the backend (later lines are written synchronously).
    ///
    /// # Errors
    ///
    /// [`InitError::Io`] if [`build`](Self::build) failed; [`InitError::AlreadySet`] if a
    /// `log` logger was already installed (this one is then shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// let guard = kingpin::logger::LoggerBuilder::new().writer(std::io::sink()).init().unwrap();
    /// log::info!("served {} requests", 3);
    /// guard.flush();
    /// ```
    pub fn init(self) -> Result<LoggerGuard, InitError> {
        let logger: &'static AsyncLogger = Box::leak(Box::new(self.build().map_err(InitError::Io)?));
        if log::set_logger(logger).is_err() {
            logger.shutdown();
            return Err(InitError::AlreadySet);
        }
        logger.shared.global.store(true, Ordering::Relaxed);
        log::set_max_level(logger.level());
        Ok(LoggerGuard { logger })
    }
}

/// The global logger installed by [`LoggerBuilder::init`]; dereferences to it. Dropping the
/// guard runs [`AsyncLogger::shutdown`]. Any thread may use it.
#[must_use = "dropping the guard shuts the logger down"]
pub struct LoggerGuard {
    /// The leaked, installed logger.
    logger: &'static AsyncLogger,
}

impl std::ops::Deref for LoggerGuard {
    type Target = AsyncLogger;
    fn deref(&self) -> &AsyncLogger {
        self.logger
    }
}

impl Drop for LoggerGuard {
    fn drop(&mut self) {
        self.logger.shutdown();
    }
}

impl fmt::Debug for LoggerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LoggerGuard").field(self.logger).finish()
    }
}

/// Why [`LoggerBuilder::init`] failed.
#[derive(Debug)]
pub enum InitError {
    /// The sink could not be opened or the backend thread not started.
    Io(io::Error),
    /// Another `log` logger is already installed.
    AlreadySet,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Io(e) => write!(f, "cannot start the logger: {e}"),
            InitError::AlreadySet => f.write_str("a log logger is already installed"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io(e) => Some(e),
            InitError::AlreadySet => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use log::{Log, Record};

    use super::*;
    use crate::logger::staging::LOCAL;

    #[test]
    fn env_level_names() {
        assert_eq!(parse_level("off"), Some(LevelFilter::Off));
        assert_eq!(parse_level("TRACE"), Some(LevelFilter::Trace));
        assert_eq!(parse_level("warning"), None);
    }

    #[test]
    fn closed_producers_release_their_buffers() {
        let logger = LoggerBuilder::new().env_var(None).writer(std::io::sink()).build().unwrap();
        logger.log(&Record::builder().args(format_args!("x")).level(log::Level::Info).build());
        assert!(logger.shutdown());
        let producers = LOCAL.with(|l| l.borrow().producers_of(logger.shared.id));
        assert_eq!(producers.len(), 1);
        let st = producers[0].state.lock();
        assert!(st.closed && st.buf.capacity() == 0);
    }
}
