//! What a connection waits for before its handler meets it: the PROXY protocol header of a
//! load balancer ([`ProxyWait`]); its TLS handshake is the session's own.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::base::per_ip::PerIp;
use crate::proxy::ProxyHeader;

/// A connection waiting for its PROXY protocol header.
#[derive(Clone)]
pub(crate) struct ProxyWait {
    /// Whether a connection without a header is served as is.
    pub(crate) optional: bool,
    /// The server's per-address count, applied to the address the header carries.
    pub(crate) per_ip: Option<Arc<PerIp>>,
}

/// What a PROXY header said, kept for the handler: the balancer's address (the TCP peer) and
/// the header itself.
pub(crate) struct Proxied {
    pub(crate) via: SocketAddr,
    pub(crate) header: ProxyHeader,
}
