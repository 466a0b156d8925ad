//! `kp_handle`: a connection reached from any thread, owned by the C program until freed.
//!
//! All handles of one connection share a `HandleGroup`; the group is dropped with the last
//! handle, and closes the connection then if its owner asked for it
//! (`kp_conn_close_on_last_handle`). A freed handle's memory is marked dead first; debug
//! builds keep the last freed handles in a quarantine instead of giving their memory back, so
//! a second free of the same pointer is caught rather than freeing whatever reused it.

use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kingpin::ConnHandle;
use parking_lot::Mutex;

use crate::ffi;
use crate::status::{fail, from_error, guard, KP_ERR_BAD_HANDLE, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_OK};

/// What every handle of one connection shares.
pub(crate) struct HandleGroup {
    handle: ConnHandle,
    close_on_last: AtomicBool,
}

impl HandleGroup {
    pub(crate) fn new(handle: ConnHandle, close_on_last: bool) -> Self {
        HandleGroup { handle, close_on_last: AtomicBool::new(close_on_last) }
    }

    pub(crate) fn close_on_last(&self) {
        self.close_on_last.store(true, Ordering::Release);
    }
}

impl Drop for HandleGroup {
    fn drop(&mut self) {
        if self.close_on_last.load(Ordering::Acquire) {
            // Closed already, or its loop has stopped: nothing left to close.
            let _ = self.handle.close();
        }
    }
}

/// A live handle's mark; a freed one's is [`DEAD`].
const LIVE: u64 = 0x6b70_5f68_616e_646c; // "kp_handl"
const DEAD: u64 = 0x6465_6164_6465_6164; // "deaddead"

/// Freed handles kept (debug builds) before their memory is given back.
const QUARANTINE: usize = 1 << 16;

/// A handle to one connection (opaque), usable from any thread. Made by `kp_conn_handle` or
/// `kp_handle_clone`, freed by `kp_handle_free` — exactly once. See the ownership rules at the
/// top of `kingpin.h`.
pub struct kp_handle {
    mark: u64,
    group: Option<Arc<HandleGroup>>,
}

static FREED: Mutex<VecDeque<Box<kp_handle>>> = Mutex::new(VecDeque::new());

impl kp_handle {
    pub(crate) fn boxed(group: Arc<HandleGroup>) -> *mut kp_handle {
        Box::into_raw(Box::new(kp_handle { mark: LIVE, group: Some(group) }))
    }
}

/// The live handle behind `h`.
fn live<'a>(function: &str, h: *const kp_handle) -> Result<&'a Arc<HandleGroup>, c_int> {
    // SAFETY: the header's contract: `h` is NULL or came from `kp_conn_handle` /
    // `kp_handle_clone`. A freed one is still readable in debug builds (quarantine), where the
    // mark tells; in release builds using a freed handle is undefined, as documented.
    match unsafe { ffi::as_ref(h) } {
        None => Err(fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: handle is NULL"))),
        Some(handle) => match (&handle.group, handle.mark) {
            (Some(group), LIVE) => Ok(group),
            _ => Err(fail(KP_ERR_BAD_HANDLE, format!("{function}: the handle was freed already"))),
        },
    }
}

fn with(function: &str, h: *const kp_handle, f: impl FnOnce(&Arc<HandleGroup>) -> c_int) -> c_int {
    guard(function, KP_ERR_INTERNAL, || match live(function, h) {
        Ok(group) => f(group),
        Err(code) => code,
    })
}

/// Queues `len` bytes at `data` (copied) to be sent on the connection. Any thread.
///
/// Returns `KP_OK` once queued (written unless the connection closes first);
/// `KP_ERR_FULL` when the connection's pending output is at its high water mark (its peer
/// does not read: retry after `on_low_water`, drop, or close), `KP_ERR_CLOSED` once the
/// connection has closed, `KP_ERR_STOPPED` once its loop has stopped. Nothing is queued on an
/// error. Sends from one thread arrive in the order they were made.
///
/// # Safety
/// `h` is a live handle; `data` points to `len` readable bytes (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn kp_handle_send(h: *const kp_handle, data: *const u8, len: usize) -> c_int {
    with("kp_handle_send", h, |g| {
        // SAFETY: the caller's contract.
        match unsafe { ffi::bytes(data, len) } {
            Ok(bytes) => g.handle.send(bytes).map_or_else(|e| from_error("kp_handle_send", e), |()| KP_OK),
            Err(e) => fail(KP_ERR_INVALID_ARGUMENT, format!("kp_handle_send: {e}")),
        }
    })
}

/// Closes the connection once its pending output is written. Any thread. Errors as
/// `kp_handle_send` (`KP_ERR_CLOSED` when it is closed already).
///
/// # Safety
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_close(h: *const kp_handle) -> c_int {
    with("kp_handle_close", h, |g| g.handle.close().map_or_else(|e| from_error("kp_handle_close", e), |()| KP_OK))
}

/// Shuts the connection's write side once its pending output is written. Any thread.
///
/// # Safety
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_shutdown_write(h: *const kp_handle) -> c_int {
    with("kp_handle_shutdown_write", h, |g| {
        g.handle.shutdown_write().map_or_else(|e| from_error("kp_handle_shutdown_write", e), |()| KP_OK)
    })
}

/// 1 if the connection is known to have closed, 0 if not, or a negative status. Any thread.
///
/// # Safety
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_is_closed(h: *const kp_handle) -> c_int {
    with("kp_handle_is_closed", h, |g| c_int::from(g.handle.is_closed()))
}

/// 1 if a send would be taken now (open, under the high water mark), 0 if not, or a negative
/// status. Any thread.
///
/// # Safety
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_is_writable(h: *const kp_handle) -> c_int {
    with("kp_handle_is_writable", h, |g| c_int::from(g.handle.is_writable()))
}

/// The connection's id (as `kp_conn_id`) in `*id`, and the index of its IO loop in
/// `*loop_index` (either may be NULL). Any thread.
///
/// # Safety
/// `h` is a live handle; `id` and `loop_index` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_id(h: *const kp_handle, id: *mut u64, loop_index: *mut usize) -> c_int {
    with("kp_handle_id", h, |g| {
        // SAFETY: the caller's contract.
        if let Some(out) = unsafe { ffi::as_mut(id) } {
            *out = g.handle.id().as_u64();
        }
        // SAFETY: the caller's contract.
        if let Some(out) = unsafe { ffi::as_mut(loop_index) } {
            *out = g.handle.loop_index();
        }
        KP_OK
    })
}

/// Another handle to the same connection, to give to another owner; free each one. NULL on
/// an error. Any thread.
///
/// # Safety
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_clone(h: *const kp_handle) -> *mut kp_handle {
    let mut out = std::ptr::null_mut();
    with("kp_handle_clone", h, |g| {
        out = kp_handle::boxed(Arc::clone(g));
        KP_OK
    });
    out
}

/// Frees a handle. Freeing the last handle of a connection whose owner called
/// `kp_conn_close_on_last_handle` closes the connection (after its pending output). Any
/// thread, also after the server or client was freed. NULL is ignored (`KP_OK`).
///
/// A handle freed twice is undefined behaviour; debug builds of the library detect it (among
/// the last 65,536 handles freed) and return `KP_ERR_BAD_HANDLE`.
///
/// # Safety
/// `h` is NULL or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn kp_handle_free(h: *mut kp_handle) -> c_int {
    if h.is_null() {
        return KP_OK;
    }
    guard("kp_handle_free", KP_ERR_INTERNAL, || {
        if let Err(code) = live("kp_handle_free", h) {
            log::error!(target: "kingpin::capi", "kp_handle_free: a handle was freed twice");
            return code;
        }
        // SAFETY: `h` came from `Box::into_raw` in `kp_handle::boxed` and is live (checked);
        // the caller gives it up.
        let mut handle = unsafe { Box::from_raw(h) };
        handle.mark = DEAD;
        let group = handle.group.take();
        if cfg!(debug_assertions) {
            let mut freed = FREED.lock();
            if freed.len() == QUARANTINE {
                freed.pop_front();
            }
            freed.push_back(handle);
        }
        // The last handle of a connection that asked for it closes it here.
        drop(group);
        KP_OK
    })
}
