//! `kp_handler`: the C program's callbacks, and `CHandler`, the [`IoHandler`] that calls
//! them on each IO thread.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use kingpin::{CloseReason, Conn, ConnectFailure, IdleAction, IdleKind, IoHandler, LoopCtx, Target};

use crate::conn::{enter, kp_conn, CState};
use crate::running::Owner;

/// Closed by this side: `kp_conn_close`, `kp_conn_force_close` or a handle.
pub const KP_CLOSE_LOCAL: c_int = 0;
/// The peer closed its side; pending output was written first.
pub const KP_CLOSE_PEER_CLOSED: c_int = 1;
/// A read or write failed (`detail`: the `errno`, e.g. `ECONNRESET`).
pub const KP_CLOSE_ERROR: c_int = 2;
/// kingpin's code for this connection panicked (a bug; logged).
pub const KP_CLOSE_PANICKED: c_int = 3;
/// The peer sent more than the input limit without it being consumed.
pub const KP_CLOSE_INPUT_LIMIT: c_int = 4;
/// More output was queued than the output limit allows.
pub const KP_CLOSE_OUTPUT_LIMIT: c_int = 5;
/// The memory budget ran out and this connection could not make progress.
pub const KP_CLOSE_MEMORY_BUDGET: c_int = 6;
/// An idle timeout fired and `on_idle` let it go (`detail`: the `KP_IDLE_*` kind).
pub const KP_CLOSE_IDLE: c_int = 7;
/// Server or client shutdown; pending output was written first.
pub const KP_CLOSE_SHUTDOWN: c_int = 8;
/// Shutdown deadline passed with output pending, which was discarded.
pub const KP_CLOSE_SHUTDOWN_FORCED: c_int = 9;
/// The peer broke a protocol the library frames (reserved: the C API has no codecs yet).
pub const KP_CLOSE_PROTOCOL: c_int = 10;
/// The TLS session failed after its handshake (a failed handshake closes the connection before
/// `on_connect`, without callbacks).
pub const KP_CLOSE_TLS: c_int = 11;
/// A callback returned a nonzero code (`detail`: that code); pending output was written first.
pub const KP_CLOSE_CALLBACK_ERROR: c_int = 12;
/// A reason this version does not name.
pub const KP_CLOSE_OTHER: c_int = 13;

/// `on_idle`: nothing was read for the read-idle timeout.
pub const KP_IDLE_READ: c_int = 0;
/// `on_idle`: nothing was written for the write-idle timeout.
pub const KP_IDLE_WRITE: c_int = 1;
/// `on_idle`: nothing was read or written for the all-idle timeout.
pub const KP_IDLE_ALL: c_int = 2;

/// `on_idle`'s answer: close the connection (the default when `on_idle` is NULL).
pub const KP_IDLE_CLOSE: c_int = 0;
/// `on_idle`'s answer: keep the connection; the timeout starts over.
pub const KP_IDLE_KEEP: c_int = 1;

/// A callback of one connection: `loop_user` is the IO thread's pointer (from `create`),
/// `conn` the connection, valid until the callback returns. Return 0; any other value closes
/// the connection (after its pending output) with `KP_CLOSE_CALLBACK_ERROR`.
pub type kp_conn_fn = Option<extern "C" fn(loop_user: *mut c_void, conn: *mut kp_conn) -> c_int>;

/// The callbacks of a server or client (copied at start). Every member may be NULL: a NULL
/// callback does nothing (a NULL `on_idle` closes the idle connection). All callbacks of one
/// IO thread run on that thread, one at a time; different threads run theirs in parallel.
///
/// Callbacks must not unwind (a C++ exception escaping one ends the process): catch inside
/// and return an error code. The C++ wrapper `kingpin.hpp` does that for you.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct kp_handler {
    /// Given to `create` on every IO thread, and used as every thread's `loop_user` when
    /// `create` is NULL: what it points to must then be safe to use from all of them at once.
    pub user: *mut c_void,
    /// Makes one IO thread's `loop_user`, on that thread, before it serves any connection.
    /// `loop_index` is 0 … threads-1. May return NULL.
    pub create: Option<extern "C" fn(user: *mut c_void, loop_index: usize) -> *mut c_void>,
    /// Frees a `loop_user` made by `create` (whatever it returned, NULL included), on its IO
    /// thread, once the thread has served its last callback and before
    /// `kp_server_free`/`kp_client_free` returns. Not called when `create` is NULL.
    pub destroy: Option<extern "C" fn(loop_user: *mut c_void)>,
    /// A connection was accepted (server) or established (client: its first message is sent).
    pub on_connect: kp_conn_fn,
    /// New bytes were read: `kp_conn_input` holds them; consume what was handled.
    pub on_message: kp_conn_fn,
    /// Everything sent so far was handed to the kernel.
    pub on_write_complete: kp_conn_fn,
    /// The peer closed its side; pending output is still written, then the connection closes.
    pub on_passively_closed: kp_conn_fn,
    /// The connection is closing, for `reason` (`KP_CLOSE_*`; `detail` as that code says,
    /// else 0). Called exactly once per connection that got `on_connect`; sends are ignored
    /// from here. Free what `kp_conn_user` points to.
    pub on_closed: Option<extern "C" fn(loop_user: *mut c_void, conn: *mut kp_conn, reason: c_int, detail: c_int)>,
    /// A timer of `kp_conn_set_timer` fired with its `tag`. Nonzero return: as `kp_conn_fn`.
    pub on_timer: Option<extern "C" fn(loop_user: *mut c_void, conn: *mut kp_conn, tag: u64) -> c_int>,
    /// An idle timeout of `kind` (`KP_IDLE_READ`, `_WRITE`, `_ALL`) fired: return
    /// `KP_IDLE_CLOSE` or `KP_IDLE_KEEP`. Any other value closes it with
    /// `KP_CLOSE_CALLBACK_ERROR`.
    pub on_idle: Option<extern "C" fn(loop_user: *mut c_void, conn: *mut kp_conn, kind: c_int) -> c_int>,
    /// Unsent output reached the high water mark: reading is paused, handles' sends refused.
    pub on_high_water: kp_conn_fn,
    /// Unsent output fell to the low water mark: reading resumed, handles may send again.
    pub on_low_water: kp_conn_fn,
    /// Client: the target `host`:`port` added with `tag` could not be connected (all attempts
    /// failed; `os_error` is the last `errno`: e.g. `ECONNREFUSED`, `ETIMEDOUT` for the connect
    /// timeout or a TLS handshake out of time, `EPROTO` for a failed TLS handshake (an untrusted
    /// certificate), `ECANCELED` when the client shut down first, 0 when the name did not
    /// resolve).
    /// Called once per such target; `host` is valid until the callback returns.
    pub on_connect_failed: Option<
        extern "C" fn(loop_user: *mut c_void, host: *const c_char, port: u16, tag: u64, os_error: c_int, attempts: u32),
    >,
    /// Once per loop turn, after its events and timers.
    pub on_loop: Option<extern "C" fn(loop_user: *mut c_void, loop_index: usize)>,
}

/// A [`kp_handler`] copied into something the IO threads may share: its function pointers are
/// plain code, and `user` is the C program's to make thread-safe (the header says so).
#[derive(Clone, Copy)]
pub(crate) struct SharedHandler(pub(crate) kp_handler);

// SAFETY: the struct holds function pointers and the C program's `user` pointer, which the
// header declares shared with every IO thread's `create`: the program makes what it points to
// safe to use from them.
unsafe impl Send for SharedHandler {}
// SAFETY: as above; the struct itself is never mutated after the copy.
unsafe impl Sync for SharedHandler {}

/// One IO thread's handler: the callbacks and the thread's `loop_user`.
pub(crate) struct CHandler {
    vt: kp_handler,
    user: *mut c_void,
    /// `create` ran (so `destroy` must).
    created: bool,
    /// The server or client this thread serves.
    owner: Arc<Owner>,
}

impl CHandler {
    /// Runs on an IO thread of `owner`; `on_start` makes the thread's `loop_user`.
    pub(crate) fn new(shared: &SharedHandler, owner: Arc<Owner>) -> Self {
        CHandler { vt: shared.0, user: shared.0.user, created: false, owner }
    }

    /// Calls `callback` for `conn`; a nonzero return closes the connection.
    fn call(&mut self, conn: &mut Conn<'_, CState>, name: &str, callback: kp_conn_fn) {
        if let Some(f) = callback {
            let user = self.user;
            let code = enter(conn, |c| f(user, c));
            self.check(conn, name, code);
        }
    }

    /// A callback returned `code`: anything but 0 closes the connection, logged once.
    fn check(&mut self, conn: &mut Conn<'_, CState>, name: &str, code: c_int) {
        if code != 0 && conn.state().failed.is_none() {
            log::warn!(
                target: "kingpin::capi",
                "{name} returned {code} for the connection from {}: closing it",
                conn.peer_addr()
            );
            conn.state_mut().failed = Some(code);
            conn.close();
        }
    }
}

impl Drop for CHandler {
    fn drop(&mut self) {
        if self.created {
            if let Some(destroy) = self.vt.destroy {
                destroy(self.user);
            }
        }
        // The last thing this loop does for its owner.
        self.owner.loop_ended();
    }
}

/// The code and detail of a close reason, as `on_closed` gets them.
fn reason_code(reason: &CloseReason, failed: Option<c_int>) -> (c_int, c_int) {
    match (reason, failed) {
        (CloseReason::Local, Some(code)) => (KP_CLOSE_CALLBACK_ERROR, code),
        (CloseReason::Local, None) => (KP_CLOSE_LOCAL, 0),
        (CloseReason::PeerClosed, _) => (KP_CLOSE_PEER_CLOSED, 0),
        (CloseReason::Error(e), _) => (KP_CLOSE_ERROR, e.raw_os_error().unwrap_or(0)),
        (CloseReason::Panicked(_), _) => (KP_CLOSE_PANICKED, 0),
        (CloseReason::InputLimit, _) => (KP_CLOSE_INPUT_LIMIT, 0),
        (CloseReason::OutputLimit, _) => (KP_CLOSE_OUTPUT_LIMIT, 0),
        (CloseReason::MemoryBudget, _) => (KP_CLOSE_MEMORY_BUDGET, 0),
        (CloseReason::Idle(kind), _) => (KP_CLOSE_IDLE, idle_code(*kind)),
        (CloseReason::Shutdown, _) => (KP_CLOSE_SHUTDOWN, 0),
        (CloseReason::ShutdownForced, _) => (KP_CLOSE_SHUTDOWN_FORCED, 0),
        (CloseReason::Protocol(_), _) => (KP_CLOSE_PROTOCOL, 0),
        (CloseReason::Tls(_), _) => (KP_CLOSE_TLS, 0),
        _ => (KP_CLOSE_OTHER, 0),
    }
}

/// The `errno` a failed connect reports to C.
fn os_error(e: &std::io::Error) -> c_int {
    e.raw_os_error().unwrap_or(match e.kind() {
        std::io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        std::io::ErrorKind::Interrupted => libc::ECANCELED,
        // The TLS handshake failed (an untrusted certificate, not TLS at all).
        std::io::ErrorKind::InvalidData => libc::EPROTO,
        _ => 0,
    })
}

fn idle_code(kind: IdleKind) -> c_int {
    match kind {
        IdleKind::Read => KP_IDLE_READ,
        IdleKind::Write => KP_IDLE_WRITE,
        IdleKind::All => KP_IDLE_ALL,
    }
}

impl IoHandler for CHandler {
    type ConnState = CState;

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        self.owner.mark_loop_thread();
        if let Some(create) = self.vt.create {
            self.user = create(self.vt.user, ctx.loop_index());
            self.created = true;
        }
    }

    fn on_connect(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_connect", self.vt.on_connect);
    }

    fn on_message(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_message", self.vt.on_message);
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_write_complete", self.vt.on_write_complete);
    }

    fn on_passively_closed(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_passively_closed", self.vt.on_passively_closed);
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, CState>, reason: &CloseReason) {
        let (code, detail) = reason_code(reason, conn.state().failed);
        if let Some(f) = self.vt.on_closed {
            let user = self.user;
            enter(conn, |c| f(user, c, code, detail));
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_, CState>, tag: u64) {
        if let Some(f) = self.vt.on_timer {
            let user = self.user;
            let code = enter(conn, |c| f(user, c, tag));
            self.check(conn, "on_timer", code);
        }
    }

    fn on_idle(&mut self, conn: &mut Conn<'_, CState>, kind: IdleKind) -> IdleAction {
        let Some(f) = self.vt.on_idle else { return IdleAction::Close };
        let user = self.user;
        match enter(conn, |c| f(user, c, idle_code(kind))) {
            KP_IDLE_KEEP => IdleAction::Keep,
            KP_IDLE_CLOSE => IdleAction::Close,
            code => {
                self.check(conn, "on_idle", code);
                IdleAction::Keep // closing already, for the callback's error
            }
        }
    }

    fn on_high_water(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_high_water", self.vt.on_high_water);
    }

    fn on_low_water(&mut self, conn: &mut Conn<'_, CState>) {
        self.call(conn, "on_low_water", self.vt.on_low_water);
    }

    fn on_epoll_loop(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        if let Some(f) = self.vt.on_loop {
            f(self.user, ctx.loop_index());
        }
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        if let Some(f) = self.vt.on_connect_failed {
            let host = CString::new(target.host().replace('\0', "")).unwrap_or_default();
            f(self.user, host.as_ptr(), target.port(), target.get_tag(), os_error(&failure.error), failure.attempts);
        }
    }
}

/// A static name for a `KP_CLOSE_*` code (`"KP_CLOSE_PEER_CLOSED"`); `"unknown"` for others.
#[no_mangle]
pub extern "C" fn kp_close_reason_name(reason: c_int) -> *const c_char {
    let name: &'static [u8] = match reason {
        KP_CLOSE_LOCAL => b"KP_CLOSE_LOCAL\0",
        KP_CLOSE_PEER_CLOSED => b"KP_CLOSE_PEER_CLOSED\0",
        KP_CLOSE_ERROR => b"KP_CLOSE_ERROR\0",
        KP_CLOSE_PANICKED => b"KP_CLOSE_PANICKED\0",
        KP_CLOSE_INPUT_LIMIT => b"KP_CLOSE_INPUT_LIMIT\0",
        KP_CLOSE_OUTPUT_LIMIT => b"KP_CLOSE_OUTPUT_LIMIT\0",
        KP_CLOSE_MEMORY_BUDGET => b"KP_CLOSE_MEMORY_BUDGET\0",
        KP_CLOSE_IDLE => b"KP_CLOSE_IDLE\0",
        KP_CLOSE_SHUTDOWN => b"KP_CLOSE_SHUTDOWN\0",
        KP_CLOSE_SHUTDOWN_FORCED => b"KP_CLOSE_SHUTDOWN_FORCED\0",
        KP_CLOSE_PROTOCOL => b"KP_CLOSE_PROTOCOL\0",
        KP_CLOSE_TLS => b"KP_CLOSE_TLS\0",
        KP_CLOSE_CALLBACK_ERROR => b"KP_CLOSE_CALLBACK_ERROR\0",
        KP_CLOSE_OTHER => b"KP_CLOSE_OTHER\0",
        _ => b"unknown\0",
    };
    name.as_ptr().cast()
}
