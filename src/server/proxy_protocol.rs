//! [`ProxyProtocol`]: whether a server expects the PROXY protocol header of a load balancer.

/// Whether connections start with a PROXY protocol header (v1 or v2, HAProxy's), as a load
/// balancer sends with `send-proxy`/`send-proxy-v2` ([`crate::ServerConfig::proxy_protocol`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyProtocol {
    /// No header is expected; the first bytes are the protocol's (the default).
    #[default]
    Off,
    /// Every connection must start with a valid header, or it is closed with a logged reason
    /// before the handler sees it. Use it whenever the port is reachable only through the
    /// balancer: a client that could reach it directly could claim any address.
    Required,
    /// A connection may start with a header; one whose first bytes cannot begin a header is
    /// served as is, with its TCP peer address. For a migration only: any client can claim
    /// any address.
    Optional,
}
