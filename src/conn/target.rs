//! What a client connects to: [`Target`] (host, port, first message) and its retry policy, and
//! the [`Ticket`] that follows a target until it is finished.

use std::fmt;
use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// One connection for an [`crate::EpollTPClient`] to make: where to, and what to send first.
///
/// The host may be an IP address or a name; names are resolved off the IO threads.
///
/// # Examples
///
/// ```
/// use kingpin::{Reconnect, Target};
///
/// let t = Target::new("127.0.0.1", 8080)
///     .first_message(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec())
///     .reconnect(Reconnect::default())
///     .tag(7);
/// assert_eq!(t.host(), "127.0.0.1");
/// assert_eq!(t.get_tag(), 7);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    first_message: Vec<u8>,
    reconnect: Option<Reconnect>,
    tag: u64,
    tls: Option<String>,
    proxy_header: Vec<u8>,
}

impl Target {
    /// A target at `host:port`, with no first message and no retries.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Target {
            host: host.into(),
            port,
            first_message: Vec::new(),
            reconnect: None,
            tag: 0,
            tls: None,
            proxy_header: Vec::new(),
        }
    }

    /// Bytes sent as soon as the connection is established, before `on_connect` runs.
    pub fn first_message(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.first_message = bytes.into();
        self
    }

    /// Retries a failed connect with exponential back-off and jitter.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// A number of the user's choosing, e.g. an index into the user's own table.
    pub fn tag(mut self, tag: u64) -> Self {
        self.tag = tag;
        self
    }

    /// Speaks TLS to this target, checking that its certificate is valid for `server_name` (a
    /// DNS name, also sent as SNI, or an IP address), with the client's
    /// [`crate::ClientConfig::tls`] config (feature `tls`). `on_connect` fires once the
    /// handshake is done; the first message is sent, encrypted, right after it. A failed
    /// handshake is a failed connect: [`crate::IoHandler::on_connect_failed`] (it is not
    /// retried: a certificate does not change by trying again).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, server_name: impl Into<String>) -> Self {
        self.tls = Some(server_name.into());
        self
    }

    /// Bytes sent first on the connection, before TLS and the first message, as they are: a
    /// PROXY protocol header for a server behind this client (a proxy written on kingpin),
    /// e.g. `kingpin::encode_proxy_v2(client, server)`.
    pub fn proxy_header(mut self, header: impl Into<Vec<u8>>) -> Self {
        self.proxy_header = header.into();
        self
    }

    /// The bytes of [`Target::proxy_header`] (empty: none).
    pub fn get_proxy_header(&self) -> &[u8] {
        &self.proxy_header
    }

    /// The TLS server name, when the target speaks TLS.
    pub fn get_tls_name(&self) -> Option<&str> {
        self.tls.as_deref()
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bytes sent on connect.
    pub fn get_first_message(&self) -> &[u8] {
        &self.first_message
    }

    /// The retry policy, if any.
    pub fn get_reconnect(&self) -> Option<&Reconnect> {
        self.reconnect.as_ref()
    }

    /// The user's tag (0 unless set).
    pub fn get_tag(&self) -> u64 {
        self.tag
    }

    /// `host:port`, with IPv6 literals in brackets, as name resolution expects it.
    pub(crate) fn host_port(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.host_port())
            .field("first_message", &self.first_message.len())
            .field("reconnect", &self.reconnect)
            .field("tag", &self.tag)
            .finish()
    }
}

/// Retry policy for failed connects: up to `max_attempts` in all, waiting
/// `initial_backoff × 2^(attempt-1)` (capped at `max_backoff`) between them, each wait
/// shortened by a random fraction up to `jitter` so that many clients do not retry in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconnect {
    /// Connect attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Fraction of each wait, in percent (0–100), that is randomly taken off.
    pub jitter_percent: u8,
}

impl Default for Reconnect {
    /// 5 attempts, 100 ms doubling up to 5 s, 50 % jitter.
    fn default() -> Self {
        Reconnect {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter_percent: 50,
        }
    }
}

impl Reconnect {
    /// The wait after failed attempt number `attempt` (1-based), given a random `u64`.
    pub(crate) fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff);
        let jitter = u64::from(self.jitter_percent.min(100));
        let nanos = base.as_nanos() as u64;
        let off = if jitter == 0 || nanos == 0 { 0 } else { random % (nanos / 100 * jitter + 1) };
        Duration::from_nanos(nanos - off.min(nanos))
    }
}

/// Why a target could not be connected, given to [`crate::IoHandler::on_connect_failed`].
#[derive(Debug)]
pub struct ConnectFailure {
    /// The last error: e.g. `ConnectionRefused`, `TimedOut` (connect timeout), or the
    /// resolver's error for a name that does not resolve.
    pub error: io::Error,
    /// Attempts made, retries included.
    pub attempts: u32,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after {} attempt{})", self.error, self.attempts, if self.attempts == 1 { "" } else { "s" })
    }
}

/// Whoever counts the targets that are not finished yet (the client's target pool).
pub(crate) trait Outstanding: Send + Sync {
    /// One target finished for good: connected and closed, or failed.
    fn done(&self);
}

/// A target on its way: queued, connecting, waiting to retry, or connected. Whoever holds it
/// holds the target; dropping it tells the owner the target is finished, so no path can forget
/// to count it (a connection drops it only after its descriptor is closed).
pub(crate) struct Ticket {
    target: Arc<Target>,
    owner: Weak<dyn Outstanding>,
}

impl Ticket {
    pub(crate) fn new(target: Arc<Target>, owner: Weak<dyn Outstanding>) -> Self {
        Ticket { target, owner }
    }

    /// The target.
    pub(crate) fn target(&self) -> &Arc<Target> {
        &self.target
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.done();
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ticket").field(&self.target).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let r = Reconnect {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            jitter_percent: 0,
        };
        assert_eq!(r.backoff(1, 12345), Duration::from_millis(100));
        assert_eq!(r.backoff(2, 12345), Duration::from_millis(200));
        assert_eq!(r.backoff(4, 12345), Duration::from_millis(800));
        assert_eq!(r.backoff(5, 12345), Duration::from_secs(1));
        assert_eq!(r.backoff(40, 12345), Duration::from_secs(1));
        let j = Reconnect { jitter_percent: 50, ..r };
        for seed in 0..1000u64 {
            let d = j.backoff(2, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(d <= Duration::from_millis(200) && d >= Duration::from_millis(100), "{d:?}");
        }
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(Target::new("::1", 80).host_port(), "[::1]:80");
        assert_eq!(Target::new("localhost", 80).host_port(), "localhost:80");
    }
}
