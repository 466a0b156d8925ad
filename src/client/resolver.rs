//! The client's resolver thread: host names are resolved here, never on an IO thread, since
//! the system resolver blocks.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use crate::conn::target::Ticket;
use crate::context;

/// What the resolver does with a result: queue it for the IO threads. Returns `false` when
/// nobody wants results any more (the client is gone), which ends the thread.
pub(crate) type Deliver = Box<dyn Fn(Ticket, io::Result<SocketAddr>) -> bool + Send>;

/// Starts the `kingpin-resolver` thread; returns the channel to send it targets to resolve.
/// The thread ends when the channel's senders are gone or `deliver` returns `false`.
///
/// # Errors
/// When the thread cannot be spawned.
pub(crate) fn spawn(timeout: Duration, deliver: Deliver) -> io::Result<mpsc::Sender<Ticket>> {
    let (tx, rx) = mpsc::channel::<Ticket>();
    std::thread::Builder::new().name("kingpin-resolver".into()).spawn(move || {
        while let Ok(ticket) = rx.recv() {
            let target = ticket.target().clone();
            let addr = context::resolve(&target.host_port(), timeout).and_then(|addrs| {
                addrs
                    .into_iter()
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", target.host())))
            });
            let addr = addr.map_err(|e| io::Error::new(e.kind(), format!("resolving {}: {e}", target.host())));
            if !deliver(ticket, addr) {
                return;
            }
        }
    })?;
    Ok(tx)
}
