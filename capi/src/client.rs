//! `kp_client`: an `EpollTPClient` started, given targets, waited for and freed from C.

use std::ffi::{c_char, c_int};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{ClientHandle, EpollTPClient, Reconnect, Target, TargetPool};

use crate::config::kp_config;
use crate::ffi;
use crate::handler::{kp_handler, CHandler, SharedHandler};
use crate::running::{self, Owner, Running};
use crate::stats::kp_stats;
use crate::status::{fail, from_error, guard, KP_ERR_INTERNAL, KP_ERR_INVALID_ARGUMENT, KP_ERR_IO, KP_OK};

/// A running client (opaque): N IO threads that take targets from a shared pool and connect
/// them. Made by `kp_client_start`, freed by `kp_client_free`. Its functions may be called
/// from any thread (`kp_client_connect` from callbacks too); `kp_client_free` not from its own
/// callbacks.
pub struct kp_client {
    running: Arc<Running<ClientHandle<CHandler>>>,
    pool: Arc<TargetPool>,
    reconnect: Option<Reconnect>,
    /// Started with a TLS config (targets may ask for TLS).
    tls: bool,
}

fn get<'a>(function: &str, client: *const kp_client) -> Result<&'a kp_client, c_int> {
    // SAFETY: the header's contract: NULL or a client from `kp_client_start`, not yet freed.
    unsafe { ffi::as_ref(client) }.ok_or_else(|| fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: client is NULL")))
}

/// Starts the IO threads of a client, each calling `handler->create` first. On success
/// `*client` is the running client; on failure nothing is left running, `*client` is NULL and
/// the status says why. `config` may be NULL (the defaults); both are copied.
///
/// # Safety
/// `config` is NULL or a live config; `handler` points to a `kp_handler`; `client` to a
/// writable `kp_client *`.
#[no_mangle]
pub unsafe extern "C" fn kp_client_start(
    config: *const kp_config,
    handler: *const kp_handler,
    client: *mut *mut kp_client,
) -> c_int {
    guard("kp_client_start", KP_ERR_INTERNAL, || {
        // SAFETY: the caller's contract.
        let Some(out) = (unsafe { ffi::as_mut(client) }) else {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_client_start: client is NULL");
        };
        *out = std::ptr::null_mut();
        // SAFETY: the caller's contract.
        let Some(vt) = (unsafe { ffi::as_ref(handler) }) else {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_client_start: handler is NULL");
        };
        // SAFETY: the caller's contract.
        let cfg = unsafe { ffi::as_ref(config) }.cloned().unwrap_or_default();
        let shared = SharedHandler(*vt);
        let config = cfg.client();
        let owner = Owner::new(config.get_threads());
        let loops_owner = owner.clone();
        let client = EpollTPClient::from_fn(config, move || CHandler::new(&shared, loops_owner.clone()));
        let pool = client.targets();
        match client.start() {
            Ok(handle) => {
                let running = Arc::new(Running::new(owner, handle.shutdown_handle(), handle));
                *out = Box::into_raw(Box::new(kp_client {
                    running,
                    pool,
                    reconnect: cfg.reconnect,
                    tls: cfg.tls_client.is_some(),
                }));
                KP_OK
            }
            Err(e) => fail(KP_ERR_IO, format!("kp_client_start: {e}")),
        }
    })
}

/// Adds a target: an IO thread connects to `host`:`port` (a name is resolved off the IO
/// threads), sends the `first_len` bytes at `first` (may be 0) as soon as it is connected,
/// then calls `on_connect`; `kp_conn_tag` gives `tag` back. A target that cannot be connected
/// (after the retries of `kp_config_set_reconnect`) gets `on_connect_failed`. Any thread.
///
/// # Safety
/// `client` is a live client; `host` a NUL-terminated string; `first` points to `first_len`
/// readable bytes (or `first_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn kp_client_connect(
    client: *const kp_client,
    host: *const c_char,
    port: u16,
    first: *const u8,
    first_len: usize,
    tag: u64,
) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { add_target("kp_client_connect", client, host, port, std::ptr::null(), first, first_len, tag) }
}

/// Like `kp_client_connect`, over TLS: the handshake checks the server's certificate for the
/// name `server_name` (NULL: `host`) against the roots of `kp_config_set_tls_client`, before
/// the first message is sent and `on_connect` runs. A failed handshake (an untrusted
/// certificate, no TLS) gets `on_connect_failed` with `EPROTO` (`ETIMEDOUT` out of time), not
/// retried. `KP_ERR_INVALID_ARGUMENT` at once when the client was started without
/// `kp_config_set_tls_client`.
///
/// # Safety
/// As `kp_client_connect`; `server_name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_client_connect_tls(
    client: *const kp_client,
    host: *const c_char,
    port: u16,
    server_name: *const c_char,
    first: *const u8,
    first_len: usize,
    tag: u64,
) -> c_int {
    let name = if server_name.is_null() { host } else { server_name };
    // SAFETY: the caller's contract, passed on; `name` is one of its strings.
    unsafe { add_target("kp_client_connect_tls", client, host, port, name, first, first_len, tag) }
}

/// The body of `kp_client_connect` and `kp_client_connect_tls` (`tls_name` NULL: plain TCP).
///
/// # Safety
/// As `kp_client_connect_tls`, with `tls_name` for its `server_name`.
#[allow(clippy::too_many_arguments)] // the C function's arguments, passed on
unsafe fn add_target(
    function: &str,
    client: *const kp_client,
    host: *const c_char,
    port: u16,
    tls_name: *const c_char,
    first: *const u8,
    first_len: usize,
    tag: u64,
) -> c_int {
    guard(function, KP_ERR_INTERNAL, || {
        let c = match get(function, client) {
            Ok(c) => c,
            Err(code) => return code,
        };
        // SAFETY: the caller's contract.
        let host = match unsafe { ffi::str_arg(host) } {
            Ok(h) if !h.is_empty() => h,
            Ok(_) => return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: host is empty")),
            Err(e) => return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: host: {e}")),
        };
        // SAFETY: the caller's contract.
        let first = match unsafe { ffi::bytes(first, first_len) } {
            Ok(b) => b,
            Err(e) => return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: first message: {e}")),
        };
        let mut target = Target::new(host, port).tag(tag);
        if !tls_name.is_null() {
            if !c.tls {
                return fail(
                    KP_ERR_INVALID_ARGUMENT,
                    format!(
                        "{function}: the client has no TLS config: kp_config_set_tls_client before kp_client_start"
                    ),
                );
            }
            // SAFETY: the caller's contract: NUL-terminated.
            match unsafe { ffi::str_arg(tls_name) } {
                Ok(name) if !name.is_empty() => target = target.tls(name),
                Ok(_) => return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: server_name is empty")),
                Err(e) => return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: server_name: {e}")),
            }
        }
        if !first.is_empty() {
            target = target.first_message(first);
        }
        if let Some(policy) = c.reconnect {
            target = target.reconnect(policy);
        }
        c.pool.add(target).map_or_else(|e| from_error(function, e), |()| KP_OK)
    })
}

/// Waits up to `timeout_ms` until every target added so far is done (connected and closed,
/// or failed): 1 if so, 0 on timeout, or a negative status (`KP_ERR_WRONG_THREAD` from the
/// client's own callbacks, which would wait for themselves).
///
/// # Safety
/// `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn kp_client_wait_idle(client: *const kp_client, timeout_ms: u64) -> c_int {
    guard("kp_client_wait_idle", KP_ERR_INTERNAL, || match get("kp_client_wait_idle", client) {
        Ok(c) => match c.running.off_own_threads("kp_client_wait_idle") {
            Ok(()) => c_int::from(c.pool.wait_idle(Duration::from_millis(timeout_ms))),
            Err(code) => code,
        },
        Err(code) => code,
    })
}

/// The first SIGINT or SIGTERM shuts `client` down gracefully. Needs `kp_signals_install`
/// first; one server or client per process is armed, for the life of the process
/// (`KP_ERR_ALREADY` for the others, also after it was freed).
///
/// # Safety
/// `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn kp_client_shutdown_on_signal(client: *const kp_client) -> c_int {
    guard("kp_client_shutdown_on_signal", KP_ERR_INTERNAL, || match get("kp_client_shutdown_on_signal", client) {
        Ok(c) => crate::server::arm("kp_client_shutdown_on_signal", c.running.shutdown_handle()),
        Err(code) => code,
    })
}

/// The client's counters, summed over its IO threads, into `*stats`; after `kp_client_free`
/// has begun, the final ones.
///
/// # Safety
/// `client` is a live client; `stats` points to a writable `kp_stats`.
#[no_mangle]
pub unsafe extern "C" fn kp_client_stats(client: *const kp_client, stats: *mut kp_stats) -> c_int {
    guard("kp_client_stats", KP_ERR_INTERNAL, || match get("kp_client_stats", client) {
        // SAFETY: the caller's contract: `stats` is NULL or writable.
        Ok(x) => x.running.stats("kp_client_stats", unsafe { ffi::as_mut(stats) }, |h| h.stats()),
        Err(code) => code,
    })
}

/// Begins a graceful shutdown and returns at once: stop connecting (targets not connected yet
/// get `on_connect_failed` with `ECANCELED`), write pending output, close every connection.
/// Any thread, callbacks included; idempotent.
///
/// # Safety
/// `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn kp_client_shutdown(client: *const kp_client) -> c_int {
    guard("kp_client_shutdown", KP_ERR_INTERNAL, || match get("kp_client_shutdown", client) {
        Ok(c) => {
            c.running.shutdown();
            KP_OK
        }
        Err(code) => code,
    })
}

/// Shuts the client down, waits for its IO threads and frees it. When it returns no callback
/// of the client runs any more and every `destroy` has run. `KP_ERR_WRONG_THREAD` (freeing
/// nothing) from its own callbacks. NULL is ignored.
///
/// # Safety
/// `client` is NULL or a live client, not used after this call succeeds.
#[no_mangle]
pub unsafe extern "C" fn kp_client_free(client: *mut kp_client) -> c_int {
    if client.is_null() {
        return KP_OK;
    }
    // SAFETY: non-NULL and live by the caller's contract, which also gives it up.
    guard("kp_client_free", KP_ERR_INTERNAL, || unsafe {
        running::free(client, "kp_client_free", |x: &kp_client| &x.running, |h| h.stats(), |h| h.join())
    })
}
