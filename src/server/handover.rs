//! [`Handover`]: a zero-downtime restart. The running server starts its successor (a new
//! copy of the program, say) with its listening sockets inherited across `exec`, waits until
//! the successor accepts on them, then stops accepting — without closing the sockets, which
//! the successor now owns too — and drains its connections within its shutdown deadline.
//! Connections waiting in the listen queue are never refused: the queue belongs to the
//! socket, which stays open throughout.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accept_shared::AcceptShared;
use super::listeners::{HANDOVER_FDS_ENV, HANDOVER_READY_ENV};
use crate::reactor::shutdown::Shutdown;
use crate::sys;

/// Hands a running server's listening sockets to a successor process: see
/// [`crate::ServerHandle::handover`]. Cloneable and `Send + Sync`, e.g. for a `SIGUSR2`
/// handler.
#[derive(Clone)]
pub struct Handover {
    pub(crate) shared: Arc<AcceptShared>,
    pub(crate) shutdown: Shutdown,
}

impl Handover {
    /// Starts `successor` with this server's listening sockets (it finds them with
    /// [`crate::Listeners::from_env`]), waits up to `timeout` for it to accept on them, then
    /// begins this server's graceful shutdown without closing the sockets: it stops accepting
    /// and drains its connections within the shutdown timeout, and its `join` returns. Only
    /// the listening sockets cross into the successor (every other descriptor of kingpin's is
    /// close-on-exec); `LISTEN_FDS`/`LISTEN_PID` are removed from its environment.
    ///
    /// Returns the successor's `Child` (to wait for it, or not).
    ///
    /// # Errors
    /// When the successor cannot be started, exits, or does not accept within `timeout`
    /// (it is then killed): this server goes on serving as if nothing happened.
    pub fn hand_over(&self, mut successor: Command, timeout: Duration) -> io::Result<Child> {
        if self.shared.is_stopped() {
            return Err(io::Error::other("the server is shutting down: nothing to hand over"));
        }
        let (ready_r, ready_w) = sys::pipe()?;
        let fds: Vec<RawFd> = self.shared.listener_fds();
        let list: Vec<String> = fds.iter().map(RawFd::to_string).collect();
        successor
            .env(HANDOVER_FDS_ENV, list.join(","))
            .env(HANDOVER_READY_ENV, ready_w.as_raw_fd().to_string())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        let mut keep = fds.clone();
        keep.push(ready_w.as_raw_fd());
        sys::keep_across_exec(&mut successor, keep);
        let mut child = successor.spawn()?;
        drop(ready_w); // the successor holds the only write end now: its exit is our EOF
        match wait_ready(File::from(ready_r), &mut child, timeout) {
            Ok(()) => {
                log::info!(
                    target: "kingpin::server",
                    "handed over to process {}: no longer accepting; draining the connections",
                    child.id()
                );
                self.shared.hand_over();
                self.shutdown.shutdown();
                Ok(child)
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                log::error!(target: "kingpin::server", "handover failed, serving on: {e}");
                Err(e)
            }
        }
    }
}

/// Waits for the successor's byte on `ready` (a blocking read on a helper thread, bounded by
/// `timeout`).
fn wait_ready(mut ready: File, child: &mut Child, timeout: Duration) -> io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new().name("kingpin-handover".into()).spawn(move || {
        let mut byte = [0u8; 1];
        let _ = tx.send(ready.read(&mut byte));
    })?;
    let deadline = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(1)) => return Ok(()),
            Ok(Ok(_)) => {
                let status = child.wait()?;
                return Err(io::Error::other(format!("the successor exited ({status}) before accepting")));
            }
            Ok(Err(e)) => return Err(e),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("the handover's reader thread died"))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the successor did not accept within {timeout:?}"),
                    ));
                }
            }
        }
    }
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover").field("listeners", &self.shared.listener_fds()).finish()
    }
}
