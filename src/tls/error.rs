//! [`TlsError`]: why a TLS connection failed.

use std::fmt;
use std::time::Duration;

/// Why a TLS connection failed: given to [`crate::IoHandler::on_tls_error`] when a handshake
/// fails, and inside [`crate::CloseReason::Tls`] when an established connection breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The handshake did not complete within the configured time (see
    /// `tls_handshake_timeout` of [`crate::ServerConfig`] and [`crate::ClientConfig`]).
    HandshakeTimeout(Duration),
    /// The peer ended the connection (end of stream) before the handshake completed. (A reset
    /// is an I/O error: [`crate::CloseReason::Error`], counted as a failed handshake too.)
    HandshakeEof,
    /// The TLS protocol failed: the peer sent something rustls refuses (not TLS at all, a bad
    /// record, a certificate that is not trusted, no protocol or cipher suite in common…), or
    /// the session could not be made. The message is rustls's.
    Protocol(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::HandshakeTimeout(d) => write!(f, "TLS handshake not done within {d:?}"),
            TlsError::HandshakeEof => f.write_str("the peer closed the connection during the TLS handshake"),
            TlsError::Protocol(m) => write!(f, "TLS: {m}"),
        }
    }
}

impl std::error::Error for TlsError {}
