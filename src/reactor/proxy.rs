//! The PROXY protocol on a server's connections: the header is read off the first bytes
//! before anything else (TLS included); the connection then takes the client's address it
//! names, its place in the per-address count, and goes on to its handshake or `on_connect`.

use super::callback::call;
use super::handler::{Core, IoHandler};
use super::tls;
use crate::base::slab::ConnId;
use crate::conn::close::CloseReason;
use crate::conn::intro::Proxied;
use crate::proxy::{parse_proxy_header, Parsed, ProxyCommand, ProxyError};

/// Bytes were read into connection `id`'s input while it waits for its header: takes the
/// header if it is all there, and passes what follows it on.
pub(crate) fn received<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    let Some(wait) = c.proxy_wait.as_ref() else { return };
    let Some(input) = c.input.as_mut() else { return };
    match parse_proxy_header(input.as_slice()) {
        Ok(Parsed::Incomplete) => {} // the rest comes with the next reads
        Ok(Parsed::Header { header, len }) => {
            input.advance(len);
            let wait = c.proxy_wait.take().expect("checked above");
            if let (ProxyCommand::Proxy, Some(client)) = (header.command, header.source) {
                if let Some(per_ip) = &wait.per_ip {
                    match per_ip.admit(client.ip()) {
                        Some(slot) => c.ip_slot = Some(slot),
                        None => {
                            core.env.stats.on_refused_per_ip();
                            log::warn!(
                                target: "kingpin::proxy",
                                "conn {id}: refused {client} (via {}): max_connections_per_ip reached for its address",
                                c.peer
                            );
                            c.state.close_now(CloseReason::Protocol("max_connections_per_ip".into()));
                            return;
                        }
                    }
                }
                let via = std::mem::replace(&mut c.peer, client);
                c.proxied = Some(Box::new(Proxied { via, header }));
            } else {
                // LOCAL (a health check) or an address the header does not give: the TCP peer.
                c.proxied = Some(Box::new(Proxied { via: c.peer, header }));
            }
            met(h, core, id);
        }
        Err(ProxyError::NotProxy) if wait.optional => {
            c.proxy_wait = None;
            met(h, core, id);
        }
        Err(e) => {
            core.env.stats.on_proxy_failure();
            log::warn!(target: "kingpin::proxy", "conn {id} ({}): closing: bad PROXY protocol header: {e}", c.peer);
            c.state.close_now(CloseReason::Protocol(format!("PROXY protocol header: {e}")));
        }
    }
}

/// The header is done with: the bytes after it go to the TLS session (whose handshake starts
/// now), or to the handler, which meets the connection.
fn met<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if let Some(session) = c.out.tls.as_mut() {
        if let Some(rest) = c.input.as_mut().filter(|b| !b.is_empty()) {
            session.cipher_in(&mut core.env.pool).extend_from_slice(rest.as_slice());
            rest.clear();
            return tls::received(h, core, id);
        }
        return;
    }
    call(h, core, id, "on_connect", |h, conn| h.on_connect(conn));
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.input.as_ref().is_some_and(|b| !b.is_empty()) && c.state.is_reading() {
        if let Some(idle) = c.idle.as_mut() {
            idle.last_read = core.env.now;
        }
        call(h, core, id, "on_message", |h, conn| h.on_message(conn));
    }
}
