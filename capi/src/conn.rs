//! `kp_conn`: a connection as a callback sees it, valid only until that callback returns.
//!
//! A `kp_conn *` is not an address: it is a token, unique to one callback invocation (a
//! per-thread counter tagged with the thread). While a callback runs, its thread remembers the
//! token and the connection it stands for; every `kp_conn_*` function checks that the pointer
//! it got is that token. A pointer kept after its callback, or passed to another thread, is
//! therefore refused with `KP_ERR_STALE_CONN` — in every build — instead of reaching freed or
//! reused memory.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kingpin::{Conn, TimerId};

use crate::ffi;
use crate::handle::{kp_handle, HandleGroup};
use crate::status::{fail, guard, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_ERR_STALE_CONN, KP_OK};

/// A connection inside a callback (opaque; never dereference it). Valid only on the callback's
/// thread until the callback returns; see the ownership rules at the top of `kingpin.h`.
pub struct kp_conn {
    _private: [u8; 0],
}

/// What kingpin keeps for each connection besides the core's own state.
pub struct CState {
    /// The C program's pointer (`kp_conn_set_user`).
    pub(crate) user: *mut c_void,
    /// The connection's handles, while any exist.
    pub(crate) handles: Weak<HandleGroup>,
    /// Close the connection once its last handle is freed.
    pub(crate) close_on_last_handle: bool,
    /// A callback returned this nonzero code; the connection is closing for it.
    pub(crate) failed: Option<c_int>,
}

impl Default for CState {
    fn default() -> Self {
        CState { user: std::ptr::null_mut(), handles: Weak::new(), close_on_last_handle: false, failed: None }
    }
}

/// The core's connection, its lifetime erased while it sits in the thread's current frame.
type RawConn = *mut Conn<'static, CState>;

thread_local! {
    /// The token of the callback running on this thread and the connection it stands for.
    static CURRENT: Cell<(usize, RawConn)> = const { Cell::new((0, std::ptr::null_mut())) };
    /// Callbacks entered on this thread so far.
    static COUNTER: Cell<usize> = const { Cell::new(0) };
    /// This thread's tag in the tokens it issues (distinct threads, distinct tokens).
    static THREAD_TAG: usize = NEXT_THREAD_TAG.fetch_add(1, Ordering::Relaxed);
}

static NEXT_THREAD_TAG: AtomicUsize = AtomicUsize::new(1);

/// Bits of a token that count callbacks; the ones above name the thread.
const COUNTER_BITS: u32 = 40;

/// Restores the previous frame when a callback returns (or unwinds).
struct Restore((usize, RawConn));

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Runs `f` with a fresh `kp_conn *` standing for `conn` until `f` returns.
pub(crate) fn enter<R>(conn: &mut Conn<'_, CState>, f: impl FnOnce(*mut kp_conn) -> R) -> R {
    let count = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1) & ((1 << COUNTER_BITS) - 1);
        c.set(n.max(1));
        n.max(1)
    });
    let token = (THREAD_TAG.with(|t| *t) << COUNTER_BITS | count) << 4;
    let raw = (conn as *mut Conn<'_, CState>).cast::<Conn<'static, CState>>();
    let _restore = Restore(CURRENT.with(|c| c.replace((token, raw))));
    f(token as *mut kp_conn)
}

/// The connection `conn` stands for, if it is the current callback's token on this thread.
fn current<'a>(function: &str, conn: *mut kp_conn) -> Result<&'a mut Conn<'static, CState>, c_int> {
    let (token, raw) = CURRENT.with(|c| c.get());
    if conn.is_null() {
        return Err(fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: conn is NULL")));
    }
    if token == 0 || conn as usize != token {
        return Err(fail(
            KP_ERR_STALE_CONN,
            format!("{function}: this kp_conn * is not the one of the running callback (kept after its callback returned, or used on another thread)"),
        ));
    }
    // SAFETY: `raw` was stored by `enter` on this thread from a `&mut Conn` that outlives the
    // callback now running (its frame is still on this thread's stack, below us), and the
    // trampoline does not touch that reference until the callback returns. The token check
    // above proves the frame is the current one.
    Ok(unsafe { &mut *raw })
}

/// Runs `f` on the current callback's connection, returning its status.
fn with(function: &str, conn: *mut kp_conn, f: impl FnOnce(&mut Conn<'static, CState>) -> c_int) -> c_int {
    guard(function, KP_ERR_INTERNAL, || match current(function, conn) {
        Ok(c) => f(c),
        Err(code) => code,
    })
}

/// Queues `len` bytes at `data` to be sent (copied; written when the callback returns,
/// together with its other sends). Ignored once the connection is closing.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `data` points to `len` readable bytes
/// (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn kp_conn_send(conn: *mut kp_conn, data: *const u8, len: usize) -> c_int {
    with("kp_conn_send", conn, |c| {
        // SAFETY: the caller's contract: `len` readable bytes at `data`.
        match unsafe { ffi::bytes(data, len) } {
            Ok(bytes) => {
                c.send(bytes);
                KP_OK
            }
            Err(e) => fail(KP_ERR_INVALID_ARGUMENT, format!("kp_conn_send: {e}")),
        }
    })
}

/// Sends every unconsumed input byte and consumes it: an echo, without a copy when no output
/// is pending.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_send_input(conn: *mut kp_conn) -> c_int {
    with("kp_conn_send_input", conn, |c| {
        c.send_input();
        KP_OK
    })
}

/// The unconsumed input: its first byte, with its length in `*len`. Valid until the callback
/// returns or the input is consumed or sent. NULL (and `*len` = 0) when there is none or on an
/// error (`kp_last_error_message` tells which).
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_input(conn: *mut kp_conn, len: *mut usize) -> *const u8 {
    let mut out: (*const u8, usize) = (std::ptr::null(), 0);
    let status = with("kp_conn_input", conn, |c| {
        // Only a connection holding input has a buffer; asking for an empty one would take one.
        if c.input_len() > 0 {
            let input = c.input();
            out = (input.as_slice().as_ptr(), input.len());
        }
        KP_OK
    });
    // SAFETY: the caller's contract: `len` is NULL or writable.
    if let Some(len) = unsafe { ffi::as_mut(len) } {
        *len = if status == KP_OK { out.1 } else { 0 };
    }
    out.0
}

/// Consumes the first `n` input bytes (they were handled). `n` above the input's length is
/// refused with `KP_ERR_INVALID_ARGUMENT`, consuming nothing.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_consume(conn: *mut kp_conn, n: usize) -> c_int {
    with("kp_conn_consume", conn, |c| {
        let held = c.input_len();
        if n > held {
            return fail(KP_ERR_INVALID_ARGUMENT, format!("kp_conn_consume: {n} bytes asked, {held} held"));
        }
        if n > 0 {
            c.input().advance(n);
        }
        KP_OK
    })
}

/// Closes the connection once its pending output is written (`on_closed` follows, with
/// `KP_CLOSE_LOCAL`).
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_close(conn: *mut kp_conn) -> c_int {
    with("kp_conn_close", conn, |c| {
        c.close();
        KP_OK
    })
}

/// Closes the connection now, discarding pending output.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_force_close(conn: *mut kp_conn) -> c_int {
    with("kp_conn_force_close", conn, |c| {
        c.force_close();
        KP_OK
    })
}

/// Shuts the write side once pending output is written (half-close); reading goes on.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_shutdown_write(conn: *mut kp_conn) -> c_int {
    with("kp_conn_shutdown_write", conn, |c| {
        c.shutdown_write();
        KP_OK
    })
}

/// Stops (`paused` nonzero) or resumes reading from the connection.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_pause_reading(conn: *mut kp_conn, paused: c_int) -> c_int {
    with("kp_conn_pause_reading", conn, |c| {
        if paused != 0 {
            c.pause_reading();
        } else {
            c.resume_reading();
        }
        KP_OK
    })
}

/// Unsent output bytes, in `*bytes`.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `bytes` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_pending_output(conn: *mut kp_conn, bytes: *mut usize) -> c_int {
    with("kp_conn_pending_output", conn, |c| {
        // SAFETY: the caller's contract.
        match unsafe { ffi::as_mut(bytes) } {
            Some(out) => {
                *out = c.pending_output();
                KP_OK
            }
            None => fail(KP_ERR_INVALID_ARGUMENT, "kp_conn_pending_output: bytes is NULL"),
        }
    })
}

/// The connection's id in its loop (stable for its whole life, never reused by a later
/// connection), in `*id`; the same as `kp_handle_id` of its handles.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `id` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_id(conn: *mut kp_conn, id: *mut u64) -> c_int {
    with("kp_conn_id", conn, |c| {
        // SAFETY: the caller's contract.
        match unsafe { ffi::as_mut(id) } {
            Some(out) => {
                *out = c.id().as_u64();
                KP_OK
            }
            None => fail(KP_ERR_INVALID_ARGUMENT, "kp_conn_id: id is NULL"),
        }
    })
}

/// The index of the IO loop (thread) that owns the connection (0 ≤ index < threads), or a
/// negative status.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_loop_index(conn: *mut kp_conn) -> c_int {
    with("kp_conn_loop_index", conn, |c| c_int::try_from(c.loop_index()).unwrap_or(c_int::MAX))
}

/// A client connection's target tag (`kp_client_connect`), in `*tag`; 0 on a server.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `tag` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_tag(conn: *mut kp_conn, tag: *mut u64) -> c_int {
    with("kp_conn_tag", conn, |c| {
        // SAFETY: the caller's contract.
        match unsafe { ffi::as_mut(tag) } {
            Some(out) => {
                *out = c.target().map_or(0, |t| t.get_tag());
                KP_OK
            }
            None => fail(KP_ERR_INVALID_ARGUMENT, "kp_conn_tag: tag is NULL"),
        }
    })
}

/// The peer's address as text (`"127.0.0.1:40312"`, `"[::1]:40312"`), NUL-terminated, into
/// `buf` of `len` bytes (`KP_ADDR_STRLEN` always fits; a shorter buffer gets it truncated).
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `buf` points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_peer_addr(conn: *mut kp_conn, buf: *mut c_char, len: usize) -> c_int {
    with("kp_conn_peer_addr", conn, |c| {
        if buf.is_null() || len == 0 {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_conn_peer_addr: no buffer");
        }
        // SAFETY: the caller's contract: `len` writable bytes at `buf`.
        unsafe { ffi::write_str(&c.peer_addr().to_string(), buf, len) };
        KP_OK
    })
}

/// Whether the connection is TLS: 1 if so (its handshake is done), writing the ALPN protocol
/// the peers agreed on into `alpn` of `len` bytes (NUL-terminated; empty when none; may be NULL
/// with `len` 0); 0 for plain TCP; or a negative status.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `alpn` is NULL or points to `len`
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_tls(conn: *mut kp_conn, alpn: *mut c_char, len: usize) -> c_int {
    with("kp_conn_tls", conn, |c| match c.tls() {
        Some(info) => {
            let protocol = info.alpn_protocol().map(String::from_utf8_lossy).unwrap_or_default();
            // SAFETY: the caller's contract: NULL, or `len` writable bytes.
            unsafe { ffi::write_str(&protocol, alpn, len) };
            1
        }
        None => 0,
    })
}

/// Room for any address `kp_conn_peer_addr` or `kp_server_local_addr` writes, NUL included.
pub const KP_ADDR_STRLEN: usize = 64;

/// The C program's pointer for this connection (`kp_conn_set_user`); NULL until set.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_user(conn: *mut kp_conn) -> *mut c_void {
    let mut user = std::ptr::null_mut();
    with("kp_conn_user", conn, |c| {
        user = c.state().user;
        KP_OK
    });
    user
}

/// Keeps `user` with the connection; read it back with `kp_conn_user` in any later callback of
/// the connection. kingpin never reads or frees it: free what it points to in `on_closed`.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_set_user(conn: *mut kp_conn, user: *mut c_void) -> c_int {
    with("kp_conn_set_user", conn, |c| {
        c.state_mut().user = user;
        KP_OK
    })
}

/// Calls `on_timer` of this connection with `tag` after `delay_ms` (0: on the next loop turn),
/// unless cancelled or the connection closes first. Its id goes to `*timer` (may be NULL).
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback; `timer` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_set_timer(conn: *mut kp_conn, delay_ms: u64, tag: u64, timer: *mut u64) -> c_int {
    with("kp_conn_set_timer", conn, |c| {
        let id = c.set_timer(Duration::from_millis(delay_ms), tag);
        // SAFETY: the caller's contract.
        if let Some(out) = unsafe { ffi::as_mut(timer) } {
            *out = id.as_u64();
        }
        KP_OK
    })
}

/// Cancels a timer of this connection: 1 if it was pending, 0 if it had fired or was
/// cancelled already, or a negative status.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_cancel_timer(conn: *mut kp_conn, timer: u64) -> c_int {
    with("kp_conn_cancel_timer", conn, |c| c_int::from(c.cancel_timer(TimerId::from_u64(timer))))
}

/// A new handle to this connection, usable from any thread until `kp_handle_free`. NULL on an
/// error. See the ownership rules at the top of `kingpin.h`.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_handle(conn: *mut kp_conn) -> *mut kp_handle {
    let mut out = std::ptr::null_mut();
    with("kp_conn_handle", conn, |c| {
        let group = match c.state().handles.upgrade() {
            Some(g) => g,
            None => {
                let close_on_last = c.state().close_on_last_handle;
                let g = Arc::new(HandleGroup::new(c.handle(), close_on_last));
                c.state_mut().handles = Arc::downgrade(&g);
                g
            }
        };
        out = kp_handle::boxed(group);
        KP_OK
    });
    out
}

/// From now on, freeing the last handle of this connection closes it (once its pending output
/// is written), as dropping the last sender does in channel-style APIs. Applies to the handles
/// that exist now and to later ones; with no handle ever made, nothing closes.
///
/// # Safety
/// `conn` is the `kp_conn *` of the running callback.
#[no_mangle]
pub unsafe extern "C" fn kp_conn_close_on_last_handle(conn: *mut kp_conn) -> c_int {
    with("kp_conn_close_on_last_handle", conn, |c| {
        c.state_mut().close_on_last_handle = true;
        if let Some(group) = c.state().handles.upgrade() {
            group.close_on_last();
        }
        KP_OK
    })
}
