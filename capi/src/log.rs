//! Logging from C: install kingpin's async logger (to stderr, a file, or a C callback that
//! gets whole lines on the logger's own thread), and write lines to it.

use std::ffi::{c_char, c_int, c_void};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use kingpin::logger::{InitError, LoggerBuilder, LoggerGuard};
use log::LevelFilter;
use parking_lot::Mutex;

use crate::ffi;
use crate::status::{fail, guard, KP_ERR_ALREADY, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_ERR_IO, KP_OK};

/// Errors only.
pub const KP_LOG_ERROR: c_int = 1;
/// Warnings and errors.
pub const KP_LOG_WARN: c_int = 2;
/// Informational lines too (the default level).
pub const KP_LOG_INFO: c_int = 3;
/// Debugging lines too.
pub const KP_LOG_DEBUG: c_int = 4;
/// Everything.
pub const KP_LOG_TRACE: c_int = 5;

/// Gets each log line (without its newline; `len` bytes, not NUL-terminated) on the logger's
/// own thread (`kingpin-logger`), never on an IO thread or the thread that logged: it may block
/// (write to a socket, a database) without slowing the server, though a slow one delays
/// `kp_log_shutdown`, which waits for a call in progress. `user` is the pointer given to
/// `kp_log_init`.
pub type kp_log_fn = Option<extern "C" fn(user: *mut c_void, line: *const c_char, len: usize)>;

/// The installed logger, until `kp_log_shutdown`.
static GUARD: Mutex<Option<LoggerGuard>> = Mutex::new(None);

/// `kp_log_init` succeeded once (the process's logger can be set only once).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether the C callback may still be called; held around each call, so that
/// `kp_log_shutdown`, which clears it, also waits for a call in progress.
static CALLBACK_ON: Mutex<bool> = Mutex::new(false);

/// The name of the logger's own thread, the only one that calls the C callback.
const LOGGER_THREAD: &str = "kingpin-logger";

fn filter(level: c_int) -> Option<LevelFilter> {
    Some(match level {
        0 => LevelFilter::Off,
        KP_LOG_ERROR => LevelFilter::Error,
        KP_LOG_WARN => LevelFilter::Warn,
        KP_LOG_INFO => LevelFilter::Info,
        KP_LOG_DEBUG => LevelFilter::Debug,
        KP_LOG_TRACE => LevelFilter::Trace,
        _ => return None,
    })
}

/// Hands the logger's output to a C callback, one call per line.
struct Callback {
    f: extern "C" fn(*mut c_void, *const c_char, usize),
    user: *mut c_void,
    /// A line split across writes.
    partial: Vec<u8>,
}

// SAFETY: the callback runs only on the logger's backend thread; `user` is the C program's,
// declared in the header as used from that thread.
unsafe impl Send for Callback {}

impl Callback {
    /// Calls out with one line, unless `kp_log_shutdown` has returned (or is returning).
    fn call(&self, line: &[u8]) {
        let on = CALLBACK_ON.lock();
        if *on {
            (self.f)(self.user, line.as_ptr().cast(), line.len());
        }
    }
}

impl Write for Callback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // While the logger shuts down, a line may be written by the thread that logs it (an
        // IO thread): the callback is promised to run on the logger's thread only, so such a
        // line is dropped.
        if std::thread::current().name() != Some(LOGGER_THREAD) {
            return Ok(buf.len());
        }
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..end];
            if self.partial.is_empty() {
                self.call(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.call(&whole);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs kingpin's async logger for the process at `level` (`KP_LOG_*`; 0: off; the
/// environment variable `KINGPIN_LOG` overrides it when set): lines go to `callback` if it is
/// not NULL, else to the file `path` if it is not NULL (appended), else to stderr. IO threads
/// only copy a line into a per-thread buffer; the logger's thread writes them.
///
/// Returns `KP_ERR_ALREADY` if a logger is installed already (once per process),
/// `KP_ERR_INVALID_ARGUMENT` for a level that is not one (`KINGPIN_LOG` included), `KP_ERR_IO`
/// if the file cannot be opened. Without it, the library logs nothing.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `callback`, if not NULL, may be called with
/// `user` from the logger's thread until `kp_log_shutdown` returns.
#[no_mangle]
pub unsafe extern "C" fn kp_log_init(
    level: c_int,
    path: *const c_char,
    callback: kp_log_fn,
    user: *mut c_void,
) -> c_int {
    guard("kp_log_init", KP_ERR_INTERNAL, || {
        let Some(wanted) = filter(level) else {
            return fail(KP_ERR_INVALID_ARGUMENT, format!("kp_log_init: level {level} is not a KP_LOG_* level"));
        };
        let mut slot = GUARD.lock();
        if INSTALLED.swap(true, Ordering::AcqRel) {
            return fail(KP_ERR_ALREADY, "kp_log_init: a logger was installed already (once per process)");
        }
        let mut builder = LoggerBuilder::new().level(wanted);
        builder = match (callback, path.is_null()) {
            (Some(f), _) => {
                *CALLBACK_ON.lock() = true;
                builder.writer(Callback { f, user, partial: Vec::new() })
            }
            (None, false) => {
                // SAFETY: the caller's contract: NUL-terminated.
                match unsafe { ffi::str_arg(path) } {
                    Ok(p) => builder.file(p),
                    Err(e) => return fail(KP_ERR_INVALID_ARGUMENT, format!("kp_log_init: path: {e}")),
                }
            }
            (None, true) => builder.stderr(),
        };
        match builder.init() {
            Ok(g) => {
                *slot = Some(g);
                KP_OK
            }
            Err(e) => {
                *CALLBACK_ON.lock() = false;
                INSTALLED.store(false, Ordering::Release);
                match e {
                    InitError::AlreadySet => fail(KP_ERR_ALREADY, "kp_log_init: another logger is installed already"),
                    e @ InitError::BadLevel { .. } => fail(KP_ERR_INVALID_ARGUMENT, format!("kp_log_init: {e}")),
                    e => fail(KP_ERR_IO, format!("kp_log_init: {e}")),
                }
            }
        }
    })
}

/// Writes `message` at `level` (`KP_LOG_*`) through the installed logger, with the target
/// `kingpin::app`; dropped when no logger is installed or the level is filtered out.
///
/// # Safety
/// `message` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_log(level: c_int, message: *const c_char) -> c_int {
    guard("kp_log", KP_ERR_INTERNAL, || {
        let lvl = match filter(level).and_then(|f| f.to_level()) {
            Some(l) => l,
            None => return fail(KP_ERR_INVALID_ARGUMENT, format!("kp_log: level {level} is not a KP_LOG_* level")),
        };
        // SAFETY: the caller's contract: NULL or NUL-terminated.
        match unsafe { ffi::str_lossy(message) } {
            Ok(text) => {
                log::log!(target: "kingpin::app", lvl, "{text}");
                KP_OK
            }
            Err(e) => fail(KP_ERR_INVALID_ARGUMENT, format!("kp_log: {e}")),
        }
    })
}

/// Flushes what was logged and stops the logger's thread (waiting at most 5 s for the flush,
/// and for a callback call in progress). Later lines go to the file or stderr synchronously,
/// from the thread that logs them; a callback is not called after this returns (those lines
/// are dropped, as are lines logged while the logger shuts down).
/// Call it at the end of `main` (not from the log callback). Idempotent.
#[no_mangle]
pub extern "C" fn kp_log_shutdown() -> c_int {
    guard("kp_log_shutdown", KP_ERR_INTERNAL, || {
        let mut slot = GUARD.lock();
        drop(slot.take());
        // Waits for a call in progress (the logger's thread may still be writing when its
        // flush timeout has passed); none starts after this.
        *CALLBACK_ON.lock() = false;
        KP_OK
    })
}
