//! [`Role`]: what makes a loop a server's or a client's — the acceptor or the connector. The
//! event loop calls it at fixed points of each turn and routes it the events of its own
//! tokens; it knows nothing else of it, so nothing in the reactor names a server or a client.

use std::time::{Duration, Instant};

use super::handler::{Core, IoHandler};
use crate::sys::EpollEvent;

/// The part of a loop that brings connections in.
pub(crate) trait Role<H: IoHandler> {
    /// Before the wait: the work that needs no event (compete for the accept mutex; take
    /// targets and start connects). Returns a cap on the wait.
    fn before_wait(&mut self, h: &mut H, core: &mut Core<H>) -> Option<Duration>;

    /// Right after the wait, before any connection's event: the role's part of `events`
    /// (accept a batch, and give the accept mutex back before the connection work).
    fn after_wait(&mut self, h: &mut H, core: &mut Core<H>, events: &[EpollEvent]);

    /// An event on one of the role's own tokens (by the role's key), in kernel order among the
    /// connections' events.
    fn on_event(&mut self, h: &mut H, core: &mut Core<H>, key: u64, events: u32);

    /// The earliest deadline of the role's own timers (connect timeouts, retries).
    fn next_deadline(&self) -> Option<Instant>;

    /// Runs the role's timers due at the turn's time.
    fn run_timers(&mut self, h: &mut H, core: &mut Core<H>);

    /// Shutdown begins: take no more connections; report what will never connect.
    fn begin_shutdown(&mut self, h: &mut H, core: &mut Core<H>);

    /// The loop is exiting: let go of what is shared. `failed`: it ends abnormally (a failed
    /// wait, a panic outside any callback) while the other loops go on, so what they share
    /// stays theirs; only this loop's own part is given up.
    fn finish(&mut self, h: &mut H, core: &mut Core<H>, failed: bool);
}
