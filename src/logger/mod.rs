//! An asynchronous, bounded-memory logger behind the `log` facade.
//!
//! Callers format each line into a buffer of their own thread; a backend thread swaps those
//! buffers out and writes them to the sink, muduo style, so a caller never waits on the sink:
//!
//! ```text
//!  thread A ── log::info!() ──▶ [A's buffer | own mutex] ──┐ swap (hand back an empty spare)
//!  thread B ── log::warn!() ──▶ [B's buffer | own mutex] ──┤
//!  thread C ── log::debug!() ─▶ [C's buffer | own mutex] ──┘
//!                                                          ▼
//!                 backend thread "kingpin-logger": writes the full buffers, outside any
//!                 caller's lock, to the sink (stderr, a file with rotation, any Write)
//! ```
//!
//! - **Who waits on what.** A buffer's mutex is shared only between its thread and the backend,
//!   which holds it for the instant of a swap. The backend wakes every flush interval, when a
//!   buffer passes half its capacity, or on [`AsyncLogger::flush`].
//! - **Bounded memory.** A buffer holds at most its capacity (plus the one line that crosses
//!   it). In drop mode (the default) a line that finds its buffer full is dropped and counted,
//!   and once the backend catches up it writes `dropped N lines from [tid ..] (backend behind)`.
//!   In blocking mode the caller waits for the backend instead, and every line is kept.
//! - **Nothing is lost at the end.** A thread that exits leaves its buffer to the backend;
//!   [`AsyncLogger::shutdown`] (also run on drop, and by the [`LoggerGuard`] of
//!   [`LoggerBuilder::init`]) writes everything and stops the backend. Lines logged after that
//!   are written synchronously. `std::process::exit` runs no destructor: flush before it.
//! - **Sink errors** never panic and never stop the backend: they are counted
//!   ([`LoggerStats::sink_errors`]), noted on stderr, and a line in the sink says how many
//!   bytes were lost once it works again.
//! - **Levels.** A runtime filter ([`AsyncLogger::set_level`]), initialised from the
//!   environment variable `KINGPIN_LOG` (`error|warn|info|debug|trace|off`) when set; any
//!   other value is an error ([`InitError::BadLevel`]), not a silent fallback.
//!
//! The line format is documented on [`LogLine`], which also parses it.
//!
//! # Examples
//!
//! ```
//! use kingpin::logger::LoggerBuilder;
//! use log::Log;
//!
//! let logger = LoggerBuilder::new().writer(std::io::sink()).build().unwrap();
//! logger.log(&log::Record::builder().args(format_args!("hello")).level(log::Level::Info).build());
//! assert!(logger.flush());
//! ```

mod async_logger;
mod backend;
mod builder;
mod line;
mod shared;
mod sink;
mod staging;

pub use async_logger::{AsyncLogger, LoggerStats};
pub use builder::{parse_level, InitError, LoggerBuilder, LoggerGuard};
pub use line::LogLine;
