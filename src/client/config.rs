//! [`ClientConfig`]: the settings of an [`crate::EpollTPClient`].

use std::time::Duration;

use crate::reactor::config::{loop_setters, LoopConfig};
use crate::tls::TlsClientSetup;

/// Settings of an [`crate::EpollTPClient`], built by chained setters.
///
/// # Examples
///
/// ```
/// use kingpin::ClientConfig;
/// use std::time::Duration;
///
/// let config = ClientConfig::default().threads(4).connect_timeout(Duration::from_secs(2));
/// assert_eq!(config.get_threads(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) threads: usize,
    pub(crate) connect_batch: usize,
    pub(crate) max_connecting: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) mutex_delay: Duration,
    pub(crate) resolve_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_name: String,
    pub(crate) lp: LoopConfig,
    pub(crate) tls: Option<TlsClientSetup>,
}

impl Default for ClientConfig {
    /// One IO thread per CPU, 5 s connect timeout.
    fn default() -> Self {
        ClientConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connect_batch: 64,
            max_connecting: 1024,
            connect_timeout: Duration::from_secs(5),
            mutex_delay: Duration::from_millis(10),
            resolve_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            thread_name: "kingpin-client".into(),
            lp: LoopConfig::default(),
            tls: None,
        }
    }
}

impl ClientConfig {
    /// The TLS config for targets that ask for TLS ([`crate::Target::tls`]; feature `tls`):
    /// its root certificates decide which servers are trusted, its `alpn_protocols` what is
    /// offered.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(TlsClientSetup(config));
        self
    }

    /// How long a connect may take before it fails with `TimedOut` (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long resolving a host name may take (default 5 s).
    pub fn resolve_timeout(mut self, d: Duration) -> Self {
        self.resolve_timeout = d;
        self
    }

    /// Most targets one thread takes from the pool per turn (default 64).
    pub fn connect_batch(mut self, n: usize) -> Self {
        self.connect_batch = n.max(1);
        self
    }

    /// Most connects in progress at once per IO thread (default 1024); further targets wait
    /// in the pool. Keeps a burst of thousands of targets from overflowing the peers' accept
    /// queues (whose dropped handshakes the kernel retries only after a second or more).
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.max_connecting = n.max(1);
        self
    }
}

loop_setters!(ClientConfig);
