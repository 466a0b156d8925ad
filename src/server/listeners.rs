//! [`Listeners`]: listening sockets a server starts on instead of binding its own — passed by
//! systemd (socket activation), by a predecessor handing over (a zero-downtime restart), or
//! by the program itself.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// systemd's first passed descriptor (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;
/// Set by a server handing over to its successor: the listening descriptors, comma-separated.
pub(crate) const HANDOVER_FDS_ENV: &str = "KINGPIN_LISTEN_FDS";
/// Set with [`HANDOVER_FDS_ENV`]: the pipe the successor writes one byte to once it accepts.
pub(crate) const HANDOVER_READY_ENV: &str = "KINGPIN_READY_FD";

/// The environment is read once: the descriptors it names are owned by whoever took them.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Where the listeners came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerSource {
    /// systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`).
    Systemd,
    /// A predecessor's handover ([`crate::Handover`]).
    Handover,
    /// Descriptors the program passed ([`Listeners::from_fds`]).
    Given,
}

/// Already-bound listening TCP sockets for [`crate::ServerConfig::listeners`]: the server
/// accepts on them instead of binding `addr`.
///
/// # Examples
///
/// ```no_run
/// use kingpin::{Listeners, ServerConfig};
///
/// // Under systemd (a .socket unit), or started by a predecessor that handed over; else bind.
/// let mut config = ServerConfig::new("127.0.0.1:8080".parse().unwrap());
/// if let Some(listeners) = Listeners::from_env()? {
///     config = config.listeners(listeners);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Listeners {
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) ready: Option<OwnedFd>,
    source: ListenerSource,
    addr: SocketAddr,
}

impl Listeners {
    /// The listeners this process was started with, if any: systemd's (`LISTEN_FDS` and
    /// `LISTEN_PID`, descriptors from 3 on; the protocol, without libsystemd), or a kingpin
    /// predecessor's handover. `Ok(None)` when neither is set. Call it once, from `main`,
    /// before starting threads: it removes the variables from the environment (so that
    /// children do not take them for theirs), and a second call finds nothing.
    ///
    /// # Errors
    /// `InvalidInput`, with a message naming the variable, when the variables are wrong: one
    /// without the other, not numbers, `LISTEN_PID` naming another process, or a descriptor
    /// that is not open or not a listening TCP socket.
    pub fn from_env() -> io::Result<Option<Listeners>> {
        let var = |name: &str| std::env::var(name).ok();
        let (fds, pid, handover, ready) =
            (var("LISTEN_FDS"), var("LISTEN_PID"), var(HANDOVER_FDS_ENV), var(HANDOVER_READY_ENV));
        if fds.is_none() && pid.is_none() && handover.is_none() {
            return Ok(None);
        }
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", HANDOVER_FDS_ENV, HANDOVER_READY_ENV] {
            std::env::remove_var(name);
        }
        let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if let Some(list) = handover {
            let raws: Vec<RawFd> = list
                .split(',')
                .map(|f| {
                    f.trim().parse().map_err(|_| bad(format!("{HANDOVER_FDS_ENV}={list:?}: not descriptor numbers")))
                })
                .collect::<io::Result<_>>()?;
            let ready = match ready {
                Some(r) => {
                    let raw =
                        r.parse().map_err(|_| bad(format!("{HANDOVER_READY_ENV}={r:?}: not a descriptor number")))?;
                    Some(sys::adopt(raw).map_err(|e| bad(format!("{HANDOVER_READY_ENV}={raw}: {e}")))?)
                }
                None => None,
            };
            let mut listeners = Self::adopt_all(&raws, HANDOVER_FDS_ENV, ListenerSource::Handover)?;
            listeners.ready = ready;
            return Ok(Some(listeners));
        }
        let (Some(fds), Some(pid)) = (fds.as_deref(), pid.as_deref()) else {
            let (has, lacks) = if fds.is_some() { ("LISTEN_FDS", "LISTEN_PID") } else { ("LISTEN_PID", "LISTEN_FDS") };
            return Err(bad(format!("{has} is set without {lacks} (socket activation needs both)")));
        };
        let pid: u32 = pid.parse().map_err(|_| bad(format!("LISTEN_PID={pid:?}: not a process id")))?;
        if pid != sys::getpid() {
            return Err(bad(format!("LISTEN_PID={pid} names another process (this one is {})", sys::getpid())));
        }
        let n: RawFd = fds.parse().map_err(|_| bad(format!("LISTEN_FDS={fds:?}: not a number")))?;
        if !(1..=64).contains(&n) {
            return Err(bad(format!("LISTEN_FDS={n}: expected 1 to 64 descriptors")));
        }
        let raws: Vec<RawFd> = (LISTEN_FDS_START..LISTEN_FDS_START + n).collect();
        Self::adopt_all(&raws, "LISTEN_FDS", ListenerSource::Systemd).map(Some)
    }

    fn adopt_all(raws: &[RawFd], var: &str, source: ListenerSource) -> io::Result<Listeners> {
        let bad = |raw: RawFd, e: io::Error| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{var}: descriptor {raw}: {e}"))
        };
        let fds = raws.iter().map(|&raw| sys::adopt(raw).map_err(|e| bad(raw, e))).collect::<io::Result<Vec<_>>>()?;
        let mut listeners = Self::check(fds)?;
        listeners.source = source;
        Ok(listeners)
    }

    /// Listeners the program made or received itself (e.g. over a Unix socket): each must be
    /// a listening TCP socket; all must listen on the same port (they are one service).
    ///
    /// # Errors
    /// `InvalidInput` when one is not a listening TCP socket, or none is given.
    pub fn from_fds(fds: Vec<OwnedFd>) -> io::Result<Listeners> {
        Self::check(fds)
    }

    fn check(fds: Vec<OwnedFd>) -> io::Result<Listeners> {
        let mut addr = None;
        for fd in &fds {
            let a = sys::listening_tcp_addr(fd.as_fd()).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("descriptor {}: {e}", fd.as_raw_fd()))
            })?;
            sys::set_nonblocking(fd.as_fd())?;
            addr.get_or_insert(a);
        }
        let Some(addr) = addr else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listening socket given"));
        };
        Ok(Listeners { fds, ready: None, source: ListenerSource::Given, addr })
    }

    /// The address of the first listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many listeners there are.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether there are none (never, once made).
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Where they came from.
    pub fn source(&self) -> ListenerSource {
        self.source
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds: Vec<RawFd> = self.fds.iter().map(AsRawFd::as_raw_fd).collect();
        f.debug_struct("Listeners").field("addr", &self.addr).field("fds", &fds).field("source", &self.source).finish()
    }
}
