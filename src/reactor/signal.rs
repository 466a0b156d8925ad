//! Graceful stop on Ctrl+C (`SIGINT`) or `SIGTERM`, without an async-signal-unsafe handler.

use std::io;

use nix::sys::signal::{SigSet, Signal};

use super::shutdown::Shutdown;

/// Calls `on_signal` on a dedicated thread when the process gets `SIGINT` or `SIGTERM`; a
/// second signal exits the process at once (status 130).
///
/// It blocks both signals in the calling thread and waits for them with `sigwait` on a new
/// thread, so the callback is ordinary code (it may log, lock, call
/// [`crate::Shutdown::shutdown`]). Threads inherit the mask of the thread that spawns them:
/// **call it from `main` before starting the server**, or the signal may hit an IO thread and
/// kill the process the default way.
///
/// # Errors
/// When the signal mask cannot be set or the thread cannot be spawned.
///
/// # Examples
///
/// ```no_run
/// use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
/// use std::sync::{Arc, OnceLock};
///
/// struct Echo;
/// impl IoHandler for Echo {
///     type ConnState = ();
///
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         conn.send_input();
///     }
/// }
///
/// let stop = Arc::new(OnceLock::<kingpin::Shutdown>::new());
/// let s = stop.clone();
/// kingpin::on_termination(move || {
///     if let Some(stop) = s.get() {
///         stop.shutdown();
///     }
/// })?;
/// let server = EpollTPServer::from_fn(ServerConfig::default(), || Echo).start()?;
/// let _ = stop.set(server.shutdown_handle());
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_termination<F>(on_signal: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(io::Error::from)?;
    std::thread::Builder::new().name("kingpin-signal".into()).spawn(move || {
        block_watched();
        let mut on_signal = Some(on_signal);
        loop {
            match set.wait() {
                Ok(sig) => match on_signal.take() {
                    Some(f) => {
                        log::info!(target: "kingpin::signal", "{sig:?}: shutting down (again to force)");
                        f();
                    }
                    None => {
                        log::logger().flush();
                        std::process::exit(130)
                    }
                },
                Err(e) => {
                    log::error!(target: "kingpin::signal", "sigwait: {e}");
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// Calls `on_signal` on a dedicated thread each time the process gets `SIGUSR2` — the signal
/// nginx uses to start a new binary — e.g. to hand the listening sockets to a successor
/// ([`crate::Handover`]). Like [`on_termination`], it blocks the signal in the calling thread:
/// **call it from `main` before starting threads** — before [`SignalShutdown::install`] too,
/// whose thread would otherwise take the signal and die of it.
///
/// # Errors
/// When the signal mask cannot be set or the thread cannot be spawned.
pub fn on_restart_signal<F>(mut on_signal: F) -> io::Result<()>
where
    F: FnMut() + Send + 'static,
{
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR2);
    set.thread_block().map_err(io::Error::from)?;
    std::thread::Builder::new().name("kingpin-restart".into()).spawn(move || loop {
        block_watched();
        match set.wait() {
            Ok(_) => {
                log::info!(target: "kingpin::signal", "SIGUSR2: handing over to a new process");
                on_signal();
            }
            Err(e) => {
                log::error!(target: "kingpin::signal", "sigwait: {e}");
                return;
            }
        }
    })?;
    Ok(())
}

/// Blocks, in a watcher thread, every signal some watcher waits for: a signal meant for one
/// watcher must never land on another's thread (where its default action would kill the
/// process), whichever was started first.
fn block_watched() {
    let mut all = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR2] {
        all.add(s);
    }
    if let Err(e) = all.thread_block() {
        log::error!(target: "kingpin::signal", "blocking signals in a watcher thread: {e}");
    }
}

/// Ctrl+C (`SIGINT`) and `SIGTERM` shut a server or client down gracefully: the usual wiring
/// of [`on_termination`] for a `main`.
///
/// [`SignalShutdown::install`] first thing in `main` (before any thread starts, the logger's
/// included), then [`SignalShutdown::arm`] with the running server's or client's
/// [`crate::Shutdown`]. A signal before `arm` exits at once (status 130): nothing is running
/// yet that needs draining. A second signal always exits at once.
///
/// # Examples
///
/// ```no_run
/// use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, SignalShutdown};
///
/// struct Echo;
/// impl IoHandler for Echo {
///     type ConnState = ();
///
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         conn.send_input();
///     }
/// }
///
/// let signals = SignalShutdown::install()?;
/// let server = EpollTPServer::from_fn(ServerConfig::default(), || Echo).start()?;
/// signals.arm(server.shutdown_handle());
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalShutdown {
    slot: std::sync::Arc<std::sync::OnceLock<Shutdown>>,
}

impl SignalShutdown {
    /// Blocks `SIGINT` and `SIGTERM` in the calling thread (and so in threads it starts later)
    /// and waits for them on a thread of its own. Call from `main` before starting threads.
    ///
    /// # Errors
    /// As [`on_termination`].
    pub fn install() -> io::Result<Self> {
        let slot = std::sync::Arc::new(std::sync::OnceLock::<Shutdown>::new());
        let armed = slot.clone();
        on_termination(move || match armed.get() {
            Some(s) => s.shutdown(),
            None => {
                log::logger().flush();
                std::process::exit(130)
            }
        })?;
        Ok(SignalShutdown { slot })
    }

    /// Makes the next signal begin `shutdown`'s graceful shutdown. Only the first call counts.
    pub fn arm(&self, shutdown: Shutdown) {
        let _ = self.slot.set(shutdown);
    }
}
