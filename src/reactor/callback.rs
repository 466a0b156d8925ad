//! Calling the user's handler for one connection: every callback runs inside `catch_unwind`,
//! and a panic closes that connection (or aborts, by the config), never the loop.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::config::PanicPolicy;
use super::handler::{Core, IoHandler, LoopCtx};
use crate::base::panic::panic_message;
use crate::base::slab::ConnId;
use crate::conn::close::CloseReason;
use crate::conn::env::Env;
use crate::conn::view::Conn;

/// Logs and counts a caught panic, and aborts if the policy says so. Returns its message.
pub(crate) fn report_panic(env: &Env, policy: PanicPolicy, what: &str, payload: Box<dyn Any + Send>) -> String {
    let msg = panic_message(&*payload);
    env.stats.on_panic();
    log::error!(target: "kingpin::loop", "loop {}: {what} panicked: {msg}", env.index);
    if policy == PanicPolicy::Abort {
        eprintln!("kingpin: aborting after a panic in {what}: {msg}");
        log::logger().flush();
        std::process::abort();
    }
    msg
}

/// Runs a loop-level callback or closure (`what` names it), catching a panic: it is logged
/// and counted, and the loop goes on.
pub(crate) fn guarded<H: IoHandler>(core: &Core<H>, what: &str, f: impl FnOnce()) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
        report_panic(&core.env, core.cfg.panic_policy, what, p);
    }
}

/// Runs `f` with a loop context (a loop-level callback, a closure, a loop timer; `what` names
/// it), catching a panic: it is logged and counted, and the loop goes on.
pub(crate) fn run_guarded<H: IoHandler>(ctx: &mut LoopCtx<'_, H>, what: &str, f: impl FnOnce(&mut LoopCtx<'_, H>)) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(ctx))) {
        report_panic(&ctx.core.env, ctx.core.cfg.panic_policy, what, payload);
    }
}

/// Calls a handler callback for connection `id`; a panic marks the connection to close now.
pub(crate) fn call<H: IoHandler>(
    h: &mut H,
    core: &mut Core<H>,
    id: ConnId,
    what: &str,
    f: impl FnOnce(&mut H, &mut Conn<'_, H::ConnState>),
) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.is_introducing() {
        return; // the handler meets a TLS connection at `on_connect`, once the handshake is done
    }
    let env = &mut core.env;
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(h, &mut Conn::new(c, env))));
    if let Err(payload) = result {
        let msg = report_panic(env, core.cfg.panic_policy, &format!("{what} of conn {id} ({})", c.peer), payload);
        c.state.close_now(CloseReason::Panicked(msg));
    }
}

/// The peer's side ended (end of stream, reset, failed write): calls `on_passively_closed`
/// the first time only.
pub(crate) fn passively_closed<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.state.peer_closed() {
        call(h, core, id, "on_passively_closed", |h, conn| h.on_passively_closed(conn));
    }
}
