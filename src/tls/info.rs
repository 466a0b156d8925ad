//! [`TlsInfo`]: what a TLS connection's handshake settled, as a callback reads it.

use std::fmt;

#[cfg(not(feature = "tls"))]
use super::disabled::TlsSession;
#[cfg(feature = "tls")]
use super::session::TlsSession;

/// What the handshake of a TLS connection settled: read with [`crate::Conn::tls`].
pub struct TlsInfo<'a> {
    pub(crate) session: &'a TlsSession,
}

impl<'a> TlsInfo<'a> {
    /// The ALPN protocol agreed with the peer (e.g. `b"http/1.1"`), if any.
    pub fn alpn_protocol(&self) -> Option<&'a [u8]> {
        self.session.alpn_protocol()
    }

    /// On a server, the host name the client asked for (SNI), if it sent one; on a client,
    /// `None`.
    pub fn server_name(&self) -> Option<&'a str> {
        self.session.server_name()
    }

    /// The peer's certificate chain, end entity first (a server's, on a client; a client's,
    /// on a server that asks for client certificates).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&'a [rustls::pki_types::CertificateDer<'static>]> {
        self.session.peer_certificates()
    }

    /// The protocol version agreed (TLS 1.2 or 1.3).
    #[cfg(feature = "tls")]
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.session.protocol_version()
    }

    /// The cipher suite agreed.
    #[cfg(feature = "tls")]
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.session.cipher_suite()
    }
}

impl fmt::Debug for TlsInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsInfo")
            .field("alpn_protocol", &self.alpn_protocol().map(String::from_utf8_lossy))
            .field("server_name", &self.server_name())
            .finish_non_exhaustive()
    }
}
