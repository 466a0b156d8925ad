//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a proxy or load balancer
//! sends first on a connection it relays, saying whose connection it is.
//!
//! A server behind such a proxy sees the proxy's address as the peer; the header carries the
//! client's. This folder reads and writes headers as pure functions over bytes, with no I/O
//! and no state, so that the connection layers above can use them on a connection's first
//! bytes:
//!
//! - [`ProxyHeader`], [`ProxyVersion`], [`ProxyCommand`]: what a header says, and the limits
//!   [`MAX_V1_HEADER`] and [`MAX_V2_HEADER`] (`header.rs`).
//! - [`parse_proxy_header`] and [`Parsed`]: a header read off the front of the input, or
//!   "incomplete", or an error as soon as the bytes so far cannot begin a valid one
//!   (`parse.rs`).
//! - [`ProxyError`]: why bytes are not a header (`error.rs`).
//! - [`encode_proxy_v1`], [`encode_proxy_v2`], [`encode_proxy_v2_local`]: headers to send to
//!   a server that expects them (`encode.rs`).
//!
//! The specification: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

mod encode;
mod error;
mod header;
mod parse;

pub use encode::{encode_proxy_v1, encode_proxy_v2, encode_proxy_v2_local};
pub use error::ProxyError;
pub use header::{ProxyCommand, ProxyHeader, ProxyVersion, MAX_V1_HEADER, MAX_V2_HEADER};
pub use parse::{parse_proxy_header, Parsed};
