//! Status codes, the calling thread's last error message, and the guard that keeps every Rust
//! panic on this side of the boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{self, AssertUnwindSafe};

/// Success.
pub const KP_OK: c_int = 0;
/// An argument was null, out of range, or not valid UTF-8 / not an address.
pub const KP_ERR_INVALID_ARGUMENT: c_int = -1;
/// The connection has closed (a handle is stale). Nothing was sent.
pub const KP_ERR_CLOSED: c_int = -2;
/// The connection's pending output is at its high water mark (its peer is not reading).
/// Nothing was queued: retry after `on_low_water`, drop the message, or close.
pub const KP_ERR_FULL: c_int = -3;
/// The server or client has stopped, or its IO loop has exited.
pub const KP_ERR_STOPPED: c_int = -4;
/// An operating-system error; the message names it.
pub const KP_ERR_IO: c_int = -5;
/// A `kp_conn *` used outside the callback that received it (kept after the callback
/// returned, or passed to another thread). Nothing was done.
pub const KP_ERR_STALE_CONN: c_int = -6;
/// A `kp_handle *` already freed (detected in debug builds), or not a handle at all.
pub const KP_ERR_BAD_HANDLE: c_int = -7;
/// Called from a thread where the call would deadlock (e.g. `kp_server_free` from one of the
/// server's own IO threads).
pub const KP_ERR_WRONG_THREAD: c_int = -8;
/// A logger was already installed in this process.
pub const KP_ERR_ALREADY: c_int = -9;
/// kingpin failed inside (a bug): the panic was caught and its message kept.
pub const KP_ERR_INTERNAL: c_int = -10;

thread_local! {
    /// The message of the last error on this thread, NUL-terminated for C.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error and returns `code`.
pub(crate) fn fail(code: c_int, message: impl Into<String>) -> c_int {
    let mut bytes = message.into().into_bytes();
    bytes.retain(|&b| b != 0);
    let text = CString::new(bytes).unwrap_or_default();
    // During the thread's exit (a thread-local destructor calling in), the slot may be gone:
    // the code still says what happened.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = text);
    code
}

/// Maps the core's cross-thread error to a status code, recording its message.
pub(crate) fn from_error(context: &str, error: kingpin::Error) -> c_int {
    let code = match error {
        kingpin::Error::Closed => KP_ERR_CLOSED,
        kingpin::Error::Full => KP_ERR_FULL,
        kingpin::Error::LoopStopped | kingpin::Error::Stopped => KP_ERR_STOPPED,
        _ => KP_ERR_IO,
    };
    fail(code, format!("{context}: {error}"))
}

/// Runs the body of an exported function: a panic inside is caught, logged and reported as
/// [`KP_ERR_INTERNAL`] (or `on_panic` for functions that return no status), so no unwind ever
/// reaches C.
pub(crate) fn guard<T>(function: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            log::error!(target: "kingpin::capi", "{function} panicked: {message}");
            fail(KP_ERR_INTERNAL, format!("{function}: internal error: {message}"));
            on_panic
        }
    }
}

/// The message of the last error on the calling thread: set by every function that returned
/// an error code (or NULL for failure), and kept until the next error on this thread. Never
/// NULL; an empty string when there was none.
///
/// The pointer is valid until the next kingpin call that fails on this thread.
#[no_mangle]
pub extern "C" fn kp_last_error_message() -> *const c_char {
    LAST_ERROR.try_with(|last| last.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// A short name for a status code (`"KP_ERR_FULL"`), static; `"unknown"` for others.
#[no_mangle]
pub extern "C" fn kp_status_name(status: c_int) -> *const c_char {
    let name: &'static [u8] = match status {
        KP_OK => b"KP_OK\0",
        KP_ERR_INVALID_ARGUMENT => b"KP_ERR_INVALID_ARGUMENT\0",
        KP_ERR_CLOSED => b"KP_ERR_CLOSED\0",
        KP_ERR_FULL => b"KP_ERR_FULL\0",
        KP_ERR_STOPPED => b"KP_ERR_STOPPED\0",
        KP_ERR_IO => b"KP_ERR_IO\0",
        KP_ERR_STALE_CONN => b"KP_ERR_STALE_CONN\0",
        KP_ERR_BAD_HANDLE => b"KP_ERR_BAD_HANDLE\0",
        KP_ERR_WRONG_THREAD => b"KP_ERR_WRONG_THREAD\0",
        KP_ERR_ALREADY => b"KP_ERR_ALREADY\0",
        KP_ERR_INTERNAL => b"KP_ERR_INTERNAL\0",
        _ => b"unknown\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: always a valid NUL-terminated string.
        unsafe { CStr::from_ptr(kp_last_error_message()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_inside_becomes_a_status_and_a_message() {
        let code = guard("kp_example", KP_OK, || -> c_int { panic!("broken invariant") });
        assert_eq!(code, KP_OK, "the value given for a panic");
        assert_eq!(last(), "kp_example: internal error: broken invariant");
        assert_eq!(guard("kp_example", KP_ERR_INTERNAL, || KP_OK), KP_OK);
    }

    /// A thread-local destructor that calls a failing function after the error slot is gone
    /// (C++ `thread_local` objects do this): a status, not an abort.
    #[test]
    fn a_failure_during_thread_exit_is_still_a_status() {
        struct CallsAtExit(std::sync::mpsc::Sender<(c_int, String)>);
        impl Drop for CallsAtExit {
            fn drop(&mut self) {
                let code = guard("kp_example", KP_ERR_INTERNAL, || fail(KP_ERR_CLOSED, "closed"));
                let _ = self.0.send((code, last()));
            }
        }
        thread_local! {
            static AT_EXIT: std::cell::RefCell<Option<CallsAtExit>> = const { std::cell::RefCell::new(None) };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Registered first, so destroyed after the error slot the call below creates.
            AT_EXIT.with(|slot| *slot.borrow_mut() = Some(CallsAtExit(tx)));
            fail(KP_ERR_FULL, "touch the error slot");
        })
        .join()
        .expect("no abort, no panic at exit");
        let (code, _) = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(code, KP_ERR_CLOSED);
    }

    #[test]
    fn messages_are_per_thread_and_survive_nul_bytes() {
        assert_eq!(fail(KP_ERR_FULL, "full\0of nothing"), KP_ERR_FULL);
        assert_eq!(last(), "fullof nothing");
        std::thread::spawn(|| assert_eq!(last(), "")).join().unwrap();
    }
}
