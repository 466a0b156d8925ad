//! [`TlsServerSetup`] and [`TlsClientSetup`]: what a server or a client makes its sessions
//! from.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::error::TlsError;
use super::session::TlsSession;

/// A server's TLS: every accepted connection gets a session of this config.
#[derive(Clone)]
pub(crate) struct TlsServerSetup(pub(crate) Arc<rustls::ServerConfig>);

impl TlsServerSetup {
    /// A session for a connection just accepted.
    pub(crate) fn session(&self) -> Result<TlsSession, TlsError> {
        let conn = rustls::ServerConnection::new(self.0.clone()).map_err(|e| TlsError::Protocol(e.to_string()))?;
        Ok(TlsSession::new(conn.into()))
    }
}

impl fmt::Debug for TlsServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsServerSetup(alpn: {:?})", self.0.alpn_protocols)
    }
}

/// A client's TLS: a connection to a target that asks for TLS gets a session of this config,
/// for the target's server name.
#[derive(Clone)]
pub(crate) struct TlsClientSetup(pub(crate) Arc<rustls::ClientConfig>);

impl TlsClientSetup {
    /// A session for a connection to `name` (a DNS name or an IP address).
    pub(crate) fn session(&self, name: &str) -> Result<TlsSession, TlsError> {
        let server = ServerName::try_from(name.to_owned())
            .map_err(|e| TlsError::Protocol(format!("invalid server name {name:?}: {e}")))?;
        let conn =
            rustls::ClientConnection::new(self.0.clone(), server).map_err(|e| TlsError::Protocol(e.to_string()))?;
        Ok(TlsSession::new(conn.into()))
    }
}

impl fmt::Debug for TlsClientSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsClientSetup(alpn: {:?})", self.0.alpn_protocols)
    }
}
