//! `kp_server`: an `EpollTPServer` started, queried, shut down and freed from C.

use std::ffi::{c_char, c_int};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use kingpin::{EpollTPServer, ServerHandle, SignalShutdown};

use crate::config::kp_config;
use crate::ffi;
use crate::handler::{kp_handler, CHandler, SharedHandler};
use crate::running::{self, Owner, Running};
use crate::stats::kp_stats;
use crate::status::{fail, guard, KP_ERR_ALREADY, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_ERR_IO, KP_OK};

/// A running server (opaque): N IO threads, one epoll each, sharing the listening socket.
/// Made by `kp_server_start`, freed by `kp_server_free`. Its functions may be called from any
/// thread; `kp_server_wait` and `kp_server_free` not from its own callbacks.
pub struct kp_server {
    running: Arc<Running<ServerHandle<CHandler>>>,
    local_addr: SocketAddr,
}

/// The process's SIGINT/SIGTERM watcher, once `kp_signals_install` ran.
pub(crate) static SIGNALS: OnceLock<SignalShutdown> = OnceLock::new();

/// The server behind `server`, or the status for NULL.
fn get<'a>(function: &str, server: *const kp_server) -> Result<&'a kp_server, c_int> {
    // SAFETY: the header's contract: NULL or a server from `kp_server_start`, not yet freed.
    unsafe { ffi::as_ref(server) }.ok_or_else(|| fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: server is NULL")))
}

/// Binds the listening socket (`kp_config_set_addr`; default 127.0.0.1, a port the system
/// picks) and starts the IO threads, each calling `handler->create` first. On success
/// `*server` is the running server and `KP_OK` is returned; on failure (address in use, bad
/// config, out of threads) nothing is left running, `*server` is NULL and the status says why.
///
/// `config` may be NULL (the defaults); both it and `handler` are copied.
///
/// # Safety
/// `config` is NULL or a live config; `handler` points to a `kp_handler`; `server` to a
/// writable `kp_server *`.
#[no_mangle]
pub unsafe extern "C" fn kp_server_start(
    config: *const kp_config,
    handler: *const kp_handler,
    server: *mut *mut kp_server,
) -> c_int {
    guard("kp_server_start", KP_ERR_INTERNAL, || {
        // SAFETY: the caller's contract.
        let Some(out) = (unsafe { ffi::as_mut(server) }) else {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_server_start: server is NULL");
        };
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let Some(vt) = (unsafe { ffi::as_ref(handler) }) else {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_server_start: handler is NULL");
        };
        // SAFETY: the caller's contract.
        let cfg = unsafe { ffi::as_ref(config) }.cloned().unwrap_or_default();
        let shared = SharedHandler(*vt);
        let config = cfg.server();
        let owner = Owner::new(config.get_threads());
        let loops_owner = owner.clone();
        let started = EpollTPServer::from_fn(config, move || CHandler::new(&shared, loops_owner.clone())).start();
        match started {
            Ok(handle) => {
                let local_addr = handle.local_addr();
                let running = Arc::new(Running::new(owner, handle.shutdown_handle(), handle));
                *out = Box::into_raw(Box::new(kp_server { running, local_addr }));
                KP_OK
            }
            Err(e) => fail(KP_ERR_IO, format!("kp_server_start: {e}")),
        }
    })
}

/// The port the server listens on (the one the system picked for port 0); 0 for NULL.
///
/// # Safety
/// `server` is NULL or a live server.
#[no_mangle]
pub unsafe extern "C" fn kp_server_port(server: *const kp_server) -> u16 {
    get("kp_server_port", server).map_or(0, |s| s.local_addr.port())
}

/// The address the server listens on as text (`"127.0.0.1:9000"`), NUL-terminated, into
/// `buf` of `len` bytes (`KP_ADDR_STRLEN` always fits).
///
/// # Safety
/// `server` is a live server; `buf` points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_server_local_addr(server: *const kp_server, buf: *mut c_char, len: usize) -> c_int {
    guard("kp_server_local_addr", KP_ERR_INTERNAL, || match get("kp_server_local_addr", server) {
        Ok(_) if buf.is_null() || len == 0 => fail(KP_ERR_INVALID_ARGUMENT, "kp_server_local_addr: no buffer"),
        Ok(s) => {
            // SAFETY: the caller's contract: `len` writable bytes.
            unsafe { ffi::write_str(&s.local_addr.to_string(), buf, len) };
            KP_OK
        }
        Err(code) => code,
    })
}

/// The server's counters, summed over its IO threads, into `*stats`; after `kp_server_wait`,
/// the final counters of the run.
///
/// # Safety
/// `server` is a live server; `stats` points to a writable `kp_stats`.
#[no_mangle]
pub unsafe extern "C" fn kp_server_stats(server: *const kp_server, stats: *mut kp_stats) -> c_int {
    guard("kp_server_stats", KP_ERR_INTERNAL, || match get("kp_server_stats", server) {
        // SAFETY: the caller's contract: `stats` is NULL or writable.
        Ok(x) => x.running.stats("kp_server_stats", unsafe { ffi::as_mut(stats) }, |h| h.stats()),
        Err(code) => code,
    })
}

/// Begins a graceful shutdown and returns at once: stop accepting, write pending output (up to
/// the shutdown timeout), close every connection (`on_closed` with `KP_CLOSE_SHUTDOWN`), and
/// let the IO threads exit. Any thread, callbacks included; idempotent.
///
/// # Safety
/// `server` is a live server.
#[no_mangle]
pub unsafe extern "C" fn kp_server_shutdown(server: *const kp_server) -> c_int {
    guard("kp_server_shutdown", KP_ERR_INTERNAL, || match get("kp_server_shutdown", server) {
        Ok(s) => {
            s.running.shutdown();
            KP_OK
        }
        Err(code) => code,
    })
}

/// Blocks until the server has stopped (after `kp_server_shutdown` from another thread or a
/// signal, see `kp_server_shutdown_on_signal`) and every IO thread has exited. `KP_ERR_IO` if
/// an IO thread failed; `KP_ERR_WRONG_THREAD` from the server's own callbacks.
///
/// # Safety
/// `server` is a live server.
#[no_mangle]
pub unsafe extern "C" fn kp_server_wait(server: *const kp_server) -> c_int {
    guard("kp_server_wait", KP_ERR_INTERNAL, || match get("kp_server_wait", server) {
        Ok(s) => Arc::clone(&s.running).wait("kp_server_wait", |h| h.stats(), |h| h.join()),
        Err(code) => code,
    })
}

/// Shuts the server down (as `kp_server_shutdown`), waits for its IO threads (as
/// `kp_server_wait`) and frees it. When it returns, no callback of the server runs any more
/// and every `destroy` has run. Handles of its connections stay valid until freed (their
/// operations fail with `KP_ERR_CLOSED`/`KP_ERR_STOPPED`). NULL is ignored.
///
/// Returns `KP_ERR_WRONG_THREAD` (and frees nothing) when called from one of the server's own
/// callbacks.
///
/// # Safety
/// `server` is NULL or a live server, not used after this call succeeds.
#[no_mangle]
pub unsafe extern "C" fn kp_server_free(server: *mut kp_server) -> c_int {
    if server.is_null() {
        return KP_OK;
    }
    // SAFETY: non-NULL and live by the caller's contract, which also gives it up.
    guard("kp_server_free", KP_ERR_INTERNAL, || unsafe {
        running::free(server, "kp_server_free", |x: &kp_server| &x.running, |h| h.stats(), |h| h.join())
    })
}

/// Watches SIGINT and SIGTERM on a thread of the library's, so that
/// `kp_server_shutdown_on_signal` can stop a server gracefully; a second signal exits at once
/// (status 130), as does a signal before a server is armed. **Call it first thing in `main`,
/// before any thread starts** (threads inherit the blocked signals). Idempotent.
#[no_mangle]
pub extern "C" fn kp_signals_install() -> c_int {
    guard("kp_signals_install", KP_ERR_INTERNAL, || {
        if SIGNALS.get().is_some() {
            return KP_OK;
        }
        match SignalShutdown::install() {
            Ok(s) => {
                let _ = SIGNALS.set(s);
                KP_OK
            }
            Err(e) => fail(KP_ERR_IO, format!("kp_signals_install: {e}")),
        }
    })
}

/// The first SIGINT or SIGTERM shuts `server` down gracefully (then `kp_server_wait` returns).
/// Needs `kp_signals_install` first. One server or client per process is armed, for the life
/// of the process: the first to ask (`KP_ERR_ALREADY` for the others, also after it was
/// freed).
///
/// # Safety
/// `server` is a live server.
#[no_mangle]
pub unsafe extern "C" fn kp_server_shutdown_on_signal(server: *const kp_server) -> c_int {
    guard("kp_server_shutdown_on_signal", KP_ERR_INTERNAL, || match get("kp_server_shutdown_on_signal", server) {
        Ok(s) => arm("kp_server_shutdown_on_signal", s.running.shutdown_handle()),
        Err(code) => code,
    })
}

/// Arms the process's signal watcher with `shutdown`, once.
pub(crate) fn arm(function: &str, shutdown: kingpin::Shutdown) -> c_int {
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    match SIGNALS.get() {
        None => fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: call kp_signals_install first, in main")),
        Some(_) if ARMED.swap(true, std::sync::atomic::Ordering::AcqRel) => {
            fail(KP_ERR_ALREADY, format!("{function}: another server or client is armed already"))
        }
        Some(signals) => {
            signals.arm(shutdown);
            KP_OK
        }
    }
}
