//! Configuration of an [`AsyncLogger`], and installing one as the global `log` logger.

use std::ffi::OsStr;
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

/// The names [`parse_level`] takes, for error messages.
const LEVEL_NAMES: &str = "off, error, warn, info, debug, trace";

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

/// The level a builder starts with: `default`, unless the environment variable `var` holds a
/// value (`value`); an empty or blank value counts as unset.
///
/// # Errors
/// [`InitError::BadLevel`] when the value is not a level name (see [`parse_level`]): a typo
/// such as `KINGPIN_LOG=verbose` is reported rather than silently logging at `default`.
fn level_from_env(var: &str, value: Option<&OsStr>, default: LevelFilter) -> Result<LevelFilter, InitError> {
    let Some(value) = value.map(OsStr::to_string_lossy) else { return Ok(default) };
    if value.trim().is_empty() {
        return Ok(default);
    }
    parse_level(&value).ok_or_else(|| InitError::BadLevel { var: var.to_owned(), value: value.into_owned() })
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
    /// ignores the environment. An empty value counts as unset; any other value that is not a
    /// level name (see [`parse_level`]) makes [`build`](Self::build) and [`init`](Self::init)
    /// fail, so a typo does not go unnoticed.
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
    /// `InvalidInput` (wrapping an [`InitError::BadLevel`]) if the level environment variable
    /// holds something other than a level name; else opening the file sink, or spawning the
    /// backend thread, failed.
    pub fn build(self) -> io::Result<AsyncLogger> {
        let level = self.resolve_level().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.build_at(level)
    }

    /// The level to start with: the environment variable's, if set, else the builder's.
    fn resolve_level(&self) -> Result<LevelFilter, InitError> {
        match self.env_var.as_deref() {
            Some(var) => level_from_env(var, std::env::var_os(var).as_deref(), self.level),
            None => Ok(self.level),
        }
    }

    /// [`build`](Self::build) at `level`.
    fn build_at(self, level: LevelFilter) -> io::Result<AsyncLogger> {
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
    /// [`InitError::BadLevel`] if the level environment variable holds something other than
    /// a level name (nothing is started then); [`InitError::Io`] if opening the sink or
    /// starting the backend failed; [`InitError::AlreadySet`] if a `log` logger was already
    /// installed (this one is then shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// let guard = kingpin::logger::LoggerBuilder::new().writer(std::io::sink()).init().unwrap();
    /// log::info!("served {} requests", 3);
    /// guard.flush();
    /// ```
    pub fn init(self) -> Result<LoggerGuard, InitError> {
        let level = self.resolve_level()?;
        let logger: &'static AsyncLogger = Box::leak(Box::new(self.build_at(level).map_err(InitError::Io)?));
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
    /// The level environment variable (`var`, e.g. `KINGPIN_LOG`) holds `value`, which is not
    /// a level name.
    BadLevel {
        /// The environment variable.
        var: String,
        /// What it holds (lossily decoded if it is not UTF-8).
        value: String,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Io(e) => write!(f, "cannot start the logger: {e}"),
            InitError::AlreadySet => f.write_str("a log logger is already installed"),
            InitError::BadLevel { var, value } => {
                write!(f, "{var}={value:?} is not a log level (use one of: {LEVEL_NAMES})")
            }
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io(e) => Some(e),
            InitError::AlreadySet | InitError::BadLevel { .. } => None,
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
    fn env_level_unset_blank_valid_and_unknown() {
        let env = |v: Option<&str>| level_from_env("KINGPIN_LOG", v.map(OsStr::new), LevelFilter::Info);
        assert_eq!(env(None).unwrap(), LevelFilter::Info);
        assert_eq!(env(Some("")).unwrap(), LevelFilter::Info);
        assert_eq!(env(Some("  ")).unwrap(), LevelFilter::Info);
        assert_eq!(env(Some(" Debug")).unwrap(), LevelFilter::Debug);
        assert_eq!(env(Some("off")).unwrap(), LevelFilter::Off);
        let err = env(Some("verbose")).unwrap_err();
        assert!(matches!(&err, InitError::BadLevel { var, value } if var == "KINGPIN_LOG" && value == "verbose"));
        assert_eq!(
            err.to_string(),
            "KINGPIN_LOG=\"verbose\" is not a log level (use one of: off, error, warn, info, debug, trace)"
        );
        // Not UTF-8: still reported, never taken for a level.
        use std::os::unix::ffi::OsStrExt;
        let odd = level_from_env("L", Some(OsStr::from_bytes(b"de\xffbug")), LevelFilter::Warn);
        assert!(matches!(odd, Err(InitError::BadLevel { .. })));
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
