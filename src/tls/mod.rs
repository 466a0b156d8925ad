//! TLS as a layer between a connection's socket and its handler, with rustls (cargo feature
//! `tls`).
//!
//! A TLS connection reads ciphertext into a pooled buffer, hands it to rustls, and puts the
//! plaintext into the connection's input; what the handler sends is encrypted into the
//! connection's output. The handler sees plaintext only, and `on_connect` once the handshake
//! is done. Without the feature the session types have no values, so the code above compiles
//! unchanged and every TLS branch is dead.
//!
//! - [`TlsSession`]: one connection's rustls state, its ciphertext input, and what it owes.
//! - [`TlsServerSetup`] and [`TlsClientSetup`]: make sessions for a server and for a client.
//! - [`TlsError`]: why a TLS connection failed.
//! - [`TlsInfo`]: what the handshake settled (ALPN, SNI, certificates), read through
//!   [`crate::Conn::tls`].

pub(crate) mod error;
pub(crate) mod info;
pub(crate) mod received;

#[cfg(feature = "tls")]
pub(crate) mod session;
#[cfg(feature = "tls")]
pub(crate) mod setup;

#[cfg(not(feature = "tls"))]
pub(crate) mod disabled;

#[cfg(not(feature = "tls"))]
pub(crate) use disabled::{TlsClientSetup, TlsServerSetup, TlsSession};
pub(crate) use error::TlsError;
pub(crate) use info::TlsInfo;
#[cfg(feature = "tls")]
pub(crate) use session::TlsSession;
#[cfg(feature = "tls")]
pub(crate) use setup::{TlsClientSetup, TlsServerSetup};
