//! `kp_config`: the settings of a server or a client, built by setters, applied to the core's
//! [`ServerConfig`] or [`ClientConfig`] when one starts.

use std::ffi::{c_char, c_int};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kingpin::{AcceptStrategy, ClientConfig, IdleTimeouts, Reconnect, ServerConfig};

use crate::ffi;
use crate::status::{fail, guard, KP_ERR_INVALID_ARGUMENT, KP_OK};

/// The settings both kinds of config have, applied by the same code to either.
macro_rules! apply_loop {
    ($opts:expr, $c:ident) => {{
        let o = $opts;
        if let Some(n) = o.threads {
            $c = $c.threads(n);
        }
        if let Some(d) = o.shutdown_timeout {
            $c = $c.shutdown_timeout(d);
        }
        if let Some(t) = o.idle {
            $c = $c.idle_timeouts(t);
        }
        if let Some((high, low)) = o.water_marks {
            $c = $c.write_water_marks(high, low);
        }
        if let Some(n) = o.max_input_buffer {
            $c = $c.max_input_buffer(n);
        }
        if let Some(n) = o.max_output_buffer {
            $c = $c.max_output_buffer(n);
        }
        if let Some(on) = o.edge_triggered {
            $c = $c.edge_triggered(on);
        }
        if let Some(on) = o.half_close {
            $c = $c.allow_half_close(on);
        }
        $c
    }};
}

/// The IO threads take turns at one listening socket with an accept mutex (nginx's
/// `accept_mutex`; the default).
pub const KP_ACCEPT_MUTEX: c_int = 0;
/// Every IO loop watches the listening socket with `EPOLLEXCLUSIVE`.
pub const KP_ACCEPT_EXCLUSIVE: c_int = 1;
/// Every IO loop has a listening socket of its own (`SO_REUSEPORT`).
pub const KP_ACCEPT_REUSEPORT: c_int = 2;

/// The settings of a server or a client (opaque). Made by `kp_config_new` with the library's
/// defaults — which are safe facing the internet — changed by the `kp_config_set_*`
/// functions, read by `kp_server_start` or `kp_client_start` (which copy it: free it any time
/// after), freed by `kp_config_free`. One thread at a time.
///
/// Settings marked "server" are ignored by a client, and "client" ones by a server.
#[derive(Clone, Default)]
pub struct kp_config {
    addr: Option<SocketAddr>,
    threads: Option<usize>,
    shutdown_timeout: Option<Duration>,
    idle: Option<IdleTimeouts>,
    max_connections: Option<Option<usize>>,
    max_connections_per_ip: Option<Option<usize>>,
    water_marks: Option<(usize, usize)>,
    max_input_buffer: Option<usize>,
    max_output_buffer: Option<Option<usize>>,
    edge_triggered: Option<bool>,
    half_close: Option<bool>,
    accept: Option<AcceptStrategy>,
    connect_timeout: Option<Duration>,
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) tls_server: Option<Arc<rustls::ServerConfig>>,
    pub(crate) tls_client: Option<Arc<rustls::ClientConfig>>,
}

impl kp_config {
    /// The address to listen on, or the library's default (127.0.0.1, a port the system picks).
    pub(crate) fn server(&self) -> ServerConfig {
        let mut c = ServerConfig::default().thread_name("kingpin-io");
        if let Some(addr) = self.addr {
            c = c.addr(addr);
        }
        if let Some(n) = self.max_connections {
            c = c.max_connections(n);
        }
        if let Some(n) = self.max_connections_per_ip {
            c = c.max_connections_per_ip(n);
        }
        if let Some(a) = self.accept {
            c = c.accept_strategy(a);
        }
        if let Some(tls) = &self.tls_server {
            c = c.tls(Arc::clone(tls));
        }
        apply_loop!(self, c)
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::default();
        if let Some(d) = self.connect_timeout {
            c = c.connect_timeout(d);
        }
        if let Some(tls) = &self.tls_client {
            c = c.tls(Arc::clone(tls));
        }
        apply_loop!(self, c)
    }
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Runs `f` on the config behind `config`, or fails with [`KP_ERR_INVALID_ARGUMENT`] if it
/// is NULL.
fn with(function: &str, config: *mut kp_config, f: impl FnOnce(&mut kp_config) -> c_int) -> c_int {
    guard(function, crate::status::KP_ERR_INTERNAL, || {
        // SAFETY: the caller passes a config from `kp_config_new`, not yet freed, used by one
        // thread at a time (the header's contract); NULL is checked.
        match unsafe { ffi::as_mut(config) } {
            Some(c) => f(c),
            None => fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: config is NULL")),
        }
    })
}

/// A config with the library's defaults. Never NULL (aborts only if memory runs out).
#[no_mangle]
pub extern "C" fn kp_config_new() -> *mut kp_config {
    Box::into_raw(Box::default())
}

/// Frees a config. NULL is ignored.
///
/// # Safety
/// `config` is NULL or came from `kp_config_new` and was not freed.
#[no_mangle]
pub unsafe extern "C" fn kp_config_free(config: *mut kp_config) {
    if !config.is_null() {
        // SAFETY: the caller's contract: a live config from `kp_config_new`.
        drop(unsafe { Box::from_raw(config) });
    }
}

/// Server: the address to listen on, `"IP:PORT"` (`"0.0.0.0:9000"`, `"[::1]:0"`; port 0: the
/// system picks one, read it back with `kp_server_port`). Default `127.0.0.1:0`.
///
/// Returns `KP_ERR_INVALID_ARGUMENT` if it is not an address.
///
/// # Safety
/// `config` is a live config; `addr` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_addr(config: *mut kp_config, addr: *const c_char) -> c_int {
    with("kp_config_set_addr", config, |c| {
        // SAFETY: the caller's contract: NULL or NUL-terminated.
        let text = match unsafe { ffi::str_arg(addr) } {
            Ok(t) => t,
            Err(e) => return fail(KP_ERR_INVALID_ARGUMENT, format!("kp_config_set_addr: {e}")),
        };
        match text.parse::<SocketAddr>() {
            Ok(a) => {
                c.addr = Some(a);
                KP_OK
            }
            Err(_) => fail(
                KP_ERR_INVALID_ARGUMENT,
                format!("kp_config_set_addr: {text:?} is not an IP:PORT address (names are not resolved here)"),
            ),
        }
    })
}

/// IO threads, one epoll each (default: one per CPU). 0 is refused.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_threads(config: *mut kp_config, threads: usize) -> c_int {
    with("kp_config_set_threads", config, |c| {
        if threads == 0 {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_config_set_threads: at least one thread");
        }
        c.threads = Some(threads);
        KP_OK
    })
}

/// How long a shutdown waits for pending output before closing anyway (default 5,000 ms).
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_shutdown_timeout_ms(config: *mut kp_config, ms: u64) -> c_int {
    with("kp_config_set_shutdown_timeout_ms", config, |c| {
        c.shutdown_timeout = Some(Duration::from_millis(ms));
        KP_OK
    })
}

/// Idle timeouts in milliseconds, 0 for none: nothing read for `read_ms`, nothing written for
/// `write_ms`, neither for `all_ms`. When one fires, `on_idle` decides (closing by default).
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_idle_timeouts_ms(
    config: *mut kp_config,
    read_ms: u64,
    write_ms: u64,
    all_ms: u64,
) -> c_int {
    with("kp_config_set_idle_timeouts_ms", config, |c| {
        c.idle = Some(IdleTimeouts { read: millis(read_ms), write: millis(write_ms), all: millis(all_ms) });
        KP_OK
    })
}

/// Server: most connections open at once (0: no limit, the default); beyond it new ones are
/// accepted and closed at once.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_connections(config: *mut kp_config, n: usize) -> c_int {
    with("kp_config_set_max_connections", config, |c| {
        c.max_connections = Some((n > 0).then_some(n));
        KP_OK
    })
}

/// Server: most connections open at once from one peer address (0: no limit; default 1,024).
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_connections_per_ip(config: *mut kp_config, n: usize) -> c_int {
    with("kp_config_set_max_connections_per_ip", config, |c| {
        c.max_connections_per_ip = Some((n > 0).then_some(n));
        KP_OK
    })
}

/// Write water marks in bytes (default 65,536 and 32,768): at `high` unsent bytes `on_high_water`
/// fires, reading pauses and handles' sends are refused with `KP_ERR_FULL`; at `low`,
/// `on_low_water` fires and reading resumes. `low` must be below `high`.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_water_marks(config: *mut kp_config, high: usize, low: usize) -> c_int {
    with("kp_config_set_water_marks", config, |c| {
        if high == 0 || low >= high {
            return fail(
                KP_ERR_INVALID_ARGUMENT,
                format!("kp_config_set_water_marks: need 0 <= low < high, got high {high}, low {low}"),
            );
        }
        c.water_marks = Some((high, low));
        KP_OK
    })
}

/// Most unconsumed input bytes a connection may hold (default 1 MiB); a peer that sends more
/// without the handler consuming it is closed (`KP_CLOSE_INPUT_LIMIT`).
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_input_buffer(config: *mut kp_config, bytes: usize) -> c_int {
    with("kp_config_set_max_input_buffer", config, |c| {
        if bytes == 0 {
            return fail(KP_ERR_INVALID_ARGUMENT, "kp_config_set_max_input_buffer: at least one byte");
        }
        c.max_input_buffer = Some(bytes);
        KP_OK
    })
}

/// Most unsent output bytes a connection may hold before it is closed (`KP_CLOSE_OUTPUT_LIMIT`;
/// 0: no limit, the default — the high water mark pauses reading instead).
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_output_buffer(config: *mut kp_config, bytes: usize) -> c_int {
    with("kp_config_set_max_output_buffer", config, |c| {
        c.max_output_buffer = Some((bytes > 0).then_some(bytes));
        KP_OK
    })
}

/// Edge-triggered epoll (`EPOLLET`) instead of level-triggered (the default). Nonzero: on.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_edge_triggered(config: *mut kp_config, on: c_int) -> c_int {
    with("kp_config_set_edge_triggered", config, |c| {
        c.edge_triggered = Some(on != 0);
        KP_OK
    })
}

/// Half-close (nonzero: on; default off): a connection whose peer has ended its side stays
/// open after `on_passively_closed` until the handler closes it, so that replies still on
/// their way — e.g. from another thread through a handle — can be sent. Off, it closes once
/// the output pending then is written.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_allow_half_close(config: *mut kp_config, on: c_int) -> c_int {
    with("kp_config_set_allow_half_close", config, |c| {
        c.half_close = Some(on != 0);
        KP_OK
    })
}

/// Server: how the IO threads share accepting: `KP_ACCEPT_MUTEX` (the default),
/// `KP_ACCEPT_EXCLUSIVE` or `KP_ACCEPT_REUSEPORT`.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_accept_strategy(config: *mut kp_config, strategy: c_int) -> c_int {
    with("kp_config_set_accept_strategy", config, |c| {
        c.accept = Some(match strategy {
            KP_ACCEPT_MUTEX => AcceptStrategy::Mutex,
            KP_ACCEPT_EXCLUSIVE => AcceptStrategy::EpollExclusive,
            KP_ACCEPT_REUSEPORT => AcceptStrategy::ReusePort,
            other => {
                return fail(
                    KP_ERR_INVALID_ARGUMENT,
                    format!("kp_config_set_accept_strategy: unknown strategy {other}"),
                )
            }
        });
        KP_OK
    })
}

/// Client: how long a connect may take before it fails (default 5,000 ms). 0 is refused.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_connect_timeout_ms(config: *mut kp_config, ms: u64) -> c_int {
    with("kp_config_set_connect_timeout_ms", config, |c| match millis(ms) {
        Some(d) => {
            c.connect_timeout = Some(d);
            KP_OK
        }
        None => fail(KP_ERR_INVALID_ARGUMENT, "kp_config_set_connect_timeout_ms: must be above 0"),
    })
}

/// Client: retry failed connects of every target — `max_attempts` in all (1: no retry, the
/// default), waiting `initial_backoff_ms` doubling up to `max_backoff_ms`, with jitter.
///
/// # Safety
/// `config` is a live config.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_reconnect(
    config: *mut kp_config,
    max_attempts: u32,
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
) -> c_int {
    with("kp_config_set_reconnect", config, |c| {
        if max_attempts == 0 || max_backoff_ms < initial_backoff_ms {
            return fail(
                KP_ERR_INVALID_ARGUMENT,
                "kp_config_set_reconnect: need max_attempts >= 1 and max_backoff_ms >= initial_backoff_ms",
            );
        }
        c.reconnect = (max_attempts > 1).then(|| Reconnect {
            max_attempts,
            initial_backoff: Duration::from_millis(initial_backoff_ms),
            max_backoff: Duration::from_millis(max_backoff_ms),
            ..Reconnect::default()
        });
        KP_OK
    })
}
