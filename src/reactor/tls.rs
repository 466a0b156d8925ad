//! The TLS side of driving a connection: the handshake's start and timeout, what a read of
//! ciphertext yields (the handshake done, plaintext, the peer's `close_notify`), and a failed
//! session. The handler sees none of a handshake: `on_connect` fires once it is done, and a
//! failed one reaches it only through [`IoHandler::on_tls_error`].

use super::callback::{call, passively_closed};
use super::handler::{Core, IoHandler};
use super::teardown::teardown;
use crate::base::slab::ConnId;
use crate::base::timer;
use crate::conn::close::CloseReason;
use crate::conn::env::ConnTimer;
use crate::tls::TlsError;

/// A TLS connection has just joined its loop: its first flight (a client's hello) goes into
/// the output, and the handshake's timeout starts.
pub(crate) fn start<H: IoHandler>(core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    c.out.take_tls_output(&mut core.env); // a client's hello (a server has nothing to send yet)
    start_intro(core, id);
}

/// A connection the handler has not met yet has just joined its loop: the deadline of its
/// introduction starts (one timer for its PROXY header and its TLS handshake together).
pub(crate) fn start_intro<H: IoHandler>(core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    let at = timer::after(core.env.now, core.cfg.tls_handshake_timeout);
    let t = core.env.timers.insert(at, None, (id, ConnTimer::Handshake));
    c.user_timers.push(t);
}

/// Ciphertext was read into connection `id`'s session: decrypts it, queues what the session
/// answers, and calls `on_connect` (the handshake is done), `on_message` (plaintext came) and
/// `on_passively_closed` (the peer's `close_notify`), in that order.
pub(crate) fn received<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    let Some(tls) = c.out.tls.as_mut() else { return };
    let result = tls.receive(&mut c.input, &mut core.env.pool);
    c.out.take_tls_output(&mut core.env);
    let got = match result {
        Ok(got) => got,
        Err(e) => return failed(core, id, e),
    };
    if got.established {
        core.env.stats.on_tls_handshake();
        if let Some(idle) = c.idle.as_mut() {
            idle.last_read = core.env.now; // the handshake's time is not the handler's idleness
        }
        call(h, core, id, "on_connect", |h, conn| h.on_connect(conn));
    }
    let Some(c) = core.conns.get_mut(id) else { return };
    // (Paused in `on_connect`: the plaintext waits in the input for `resume_reading`.)
    if got.plaintext > 0 && c.state.is_reading() && !c.user_paused {
        if let Some(idle) = c.idle.as_mut() {
            idle.last_read = core.env.now;
        }
        call(h, core, id, "on_message", |h, conn| h.on_message(conn));
    }
    if got.peer_closed {
        passively_closed(h, core, id);
    }
}

/// The peer ended its stream (or reset) during the handshake.
pub(crate) fn ended_in_handshake<H: IoHandler>(core: &mut Core<H>, id: ConnId) {
    failed(core, id, TlsError::HandshakeEof);
}

/// The handshake of connection `id` has run out of time: it closes now — also when it is
/// already closing after a failed handshake (its alert unread, its linger not over), for the
/// reason it had.
pub(crate) fn handshake_timeout<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if !c.is_introducing() {
        return;
    }
    let limit = core.cfg.tls_handshake_timeout;
    let reason = match c.state.take_reason() {
        Some(reason) => reason,
        None if c.proxy_wait.is_some() => {
            core.env.stats.on_proxy_failure();
            log::info!(target: "kingpin::proxy", "conn {id} ({}): closing: no PROXY protocol header within {limit:?}", c.peer);
            CloseReason::Protocol(format!("no PROXY protocol header within {limit:?}"))
        }
        None => {
            let error = TlsError::HandshakeTimeout(limit);
            log::info!(target: "kingpin::tls", "conn {id} ({}): closing: {error}", c.peer);
            CloseReason::Tls(error)
        }
    };
    teardown(h, core, id, reason);
}

/// The session of connection `id` failed: the alert rustls queued is written, then the
/// connection closes (it reads no more).
fn failed<H: IoHandler>(core: &mut Core<H>, id: ConnId, error: TlsError) {
    let Some(c) = core.conns.get_mut(id) else { return };
    let during = if c.is_handshaking() { "handshake failed" } else { "failed" };
    match error {
        TlsError::HandshakeEof => log::debug!(target: "kingpin::tls", "conn {id} ({}): {error}", c.peer),
        _ => log::info!(target: "kingpin::tls", "conn {id} ({}): TLS {during}: {error}", c.peer),
    }
    if let Some(tls) = c.out.tls.as_mut() {
        tls.abandon(); // what waited for the handshake will never be sent
    }
    c.state.request_close(CloseReason::Tls(error));
}
