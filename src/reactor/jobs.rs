//! Completing blocking jobs on their loop: an outcome that came back through the mailbox goes
//! to its completion — with its connection if that is still open, else with none — and at the
//! loop's exit every job still pending is completed with [`JobError::Shutdown`]. A panic in a
//! completion is caught like a callback's (it closes the connection concerned).

use std::sync::Arc;

use super::callback::{call, guarded, run_guarded};
use super::handler::{Core, Finisher, IoHandler, LoopCtx, Remote};
use crate::base::slab::ConnId;
use crate::conn::job::Outcome;

/// Completes the pending job `key` with `outcome` (`None`: it will never come, the loop is
/// exiting). A key already completed finds nothing.
pub(crate) fn complete<H: IoHandler>(
    h: &mut H,
    core: &mut Core<H>,
    remote: &Arc<dyn Remote<H>>,
    key: ConnId,
    outcome: Option<Outcome>,
) {
    let Some(job) = core.env.jobs.remove(key) else { return };
    if outcome.is_none() {
        job.cancel.cancel(); // its value will never be wanted: let it stop
    }
    let Ok(finish) = job.finish.downcast::<Finisher<H>>() else {
        // Each loop stores its own handler's completions only.
        log::error!(target: "kingpin::loop", "loop {}: a job's completion of another type", core.env.index);
        return;
    };
    match *finish {
        Finisher::Conn(finish) => match job.conn {
            Some(id) if core.conns.get_mut(id).is_some() => {
                call(h, core, id, "a job's completion", |h, conn| finish(h, Some(conn), outcome));
                core.touched.push(id);
            }
            _ => guarded(core, "a job's completion", || finish(h, None, outcome)),
        },
        Finisher::Loop(finish) => {
            run_guarded(&mut LoopCtx { core, remote }, "a job's completion", |ctx| finish(h, ctx, outcome));
        }
    }
}

/// The loop is exiting: completes every job still pending with [`JobError::Shutdown`] (their
/// connections are gone by now).
///
/// [`JobError::Shutdown`]: crate::JobError::Shutdown
pub(crate) fn complete_all<H: IoHandler>(h: &mut H, core: &mut Core<H>, remote: &Arc<dyn Remote<H>>) {
    // A completion cannot start another job now (the loop refuses them), but go round until
    // the table is empty all the same.
    while core.env.jobs.len() > 0 {
        for key in core.env.jobs.ids() {
            complete(h, core, remote, key, None);
        }
    }
}
