//! Closing a connection for good: `on_closed`, its timers cancelled and its jobs told, its
//! buffers back to the pool, its descriptor closed, and only then counted as closed.

use std::io;
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};

use super::callback::{guarded, report_panic};
use super::handler::{Core, IoHandler};
use crate::base::slab::ConnId;
use crate::conn::close::CloseReason;
use crate::conn::connection::Connection;
use crate::conn::target::ConnectFailure;
use crate::conn::view::Conn;
use crate::sys;
use crate::tls::TlsError;

/// Closes connection `id` now, for `reason`: `on_closed`, deregistration, buffers back to the
/// pool, the descriptor closed.
pub(crate) fn teardown<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId, reason: CloseReason) {
    let Some(c) = core.conns.get_mut(id) else { return };
    c.state.set_closed();
    if c.is_introducing() {
        // The handler never saw this connection: no `on_closed`.
        handshake_failed(h, core, id, &reason);
    } else {
        let env = &mut core.env;
        let result = panic::catch_unwind(AssertUnwindSafe(|| h.on_closed(&mut Conn::new(c, env), &reason)));
        if let Err(payload) = result {
            report_panic(env, core.cfg.panic_policy, "on_closed", payload);
        }
    }
    let Some(mut c) = core.conns.remove(id) else { return };
    core.buffered -= c.held;
    if core.env.jobs.len() > 0 {
        core.env.cancel_jobs_of(id);
    }
    c.cancel_timers(&mut core.env);
    match &reason {
        CloseReason::Error(e) => log::debug!(target: "kingpin::conn", "conn {id} ({}): {e}", c.peer),
        CloseReason::ShutdownForced => {
            log::warn!(target: "kingpin::conn", "conn {id} ({}): {reason}; {} bytes dropped", c.peer, c.out.pending())
        }
        _ => log::trace!(target: "kingpin::conn", "conn {id} ({}): {reason}", c.peer),
    }
    if let Some(shared) = &c.shared {
        shared.mark_closed();
    }
    if matches!(reason, CloseReason::Idle(_) | CloseReason::Local) {
        // A deliberate close that did not drain (idle, force_close) still says close_notify;
        // a panic, a limit or an error does not: the peer must see the end as abnormal.
        c.out.tls_goodbye();
    }
    if let Err(e) = sys::epoll_del(core.epoll.as_fd(), c.out.fd.as_fd()) {
        log::debug!(target: "kingpin::conn", "conn {id}: epoll del: {e}");
    }
    let [out, tls_in, tls_staged] = c.out.take_buffers();
    for b in [c.input.take(), out, tls_in, tls_staged].into_iter().flatten() {
        core.env.pool.put(b);
    }
    let Connection { out, ticket, user, .. } = c;
    drop(out); // the descriptor
               // Counted as closed only now that the descriptor is closed: whoever sees the count drop
               // (or the client's target finish, when the ticket goes) can rely on the descriptor being
               // free.
    core.env.stats.on_close();
    drop(ticket);
    // The user's state goes last; its `Drop` is user code, and may panic like a callback.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(user))) {
        report_panic(&core.env, core.cfg.panic_policy, "dropping a connection's state", payload);
    }
}

/// A connection closes before its TLS handshake completed: counted, and told to the handler's
/// [`IoHandler::on_tls_error`] (when TLS failed) and, for a client's target,
/// [`IoHandler::on_connect_failed`].
fn handshake_failed<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId, reason: &CloseReason) {
    let Some(c) = core.conns.get(id) else { return };
    if c.proxy_wait.is_some() {
        return; // a PROXY header that never came (or was bad): counted where it was seen
    }
    if !matches!(reason, CloseReason::Shutdown | CloseReason::ShutdownForced) {
        core.env.stats.on_tls_failure();
    }
    let peer = c.peer;
    if let CloseReason::Tls(error) = reason {
        guarded::<H>(core, "on_tls_error", || h.on_tls_error(peer, error));
    }
    let Some(c) = core.conns.get(id) else { return };
    if let Some(target) = c.ticket.as_ref().map(|t| t.target().clone()) {
        let kind = match reason {
            CloseReason::Tls(TlsError::HandshakeTimeout(_)) => io::ErrorKind::TimedOut,
            CloseReason::Error(e) => e.kind(),
            CloseReason::Shutdown | CloseReason::ShutdownForced => io::ErrorKind::Interrupted,
            _ => io::ErrorKind::InvalidData,
        };
        let why = match reason {
            CloseReason::Tls(TlsError::Protocol(m)) => m.clone(),
            other => other.to_string(),
        };
        let failure = ConnectFailure { error: io::Error::new(kind, format!("TLS handshake: {why}")), attempts: 1 };
        guarded::<H>(core, "on_connect_failed", || h.on_connect_failed(&target, &failure));
    }
}
