//! [`ProxyHeader`]: what a PROXY protocol header says, and the constants of its two formats.

use std::net::SocketAddr;

/// What a PROXY protocol header says about the connection it begins: the client's address
/// and the address it connected to, as the proxy in front saw them.
///
/// Made by [`parse_proxy_header`](crate::parse_proxy_header). The addresses are `None` when
/// the header gives none to use: a version 1 `UNKNOWN` line (whatever follows the keyword
/// is ignored), a version 2 `LOCAL` header (a connection the proxy made itself, e.g. a
/// health check), and a version 2 `PROXY` header whose address family is not TCP or UDP over
/// IPv4 or IPv6 (`UNSPEC`, `UNIX`). The receiver then uses the connection's own addresses,
/// as the specification asks.
///
/// Version 2 TLVs (ALPN, authority, TLS details, …) are not kept: their bytes count as part
/// of the header and are skipped.
///
/// # Examples
///
/// ```
/// use kingpin::{parse_proxy_header, Parsed, ProxyCommand, ProxyHeader, ProxyVersion};
///
/// let input = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
/// let Ok(Parsed::Header { header, len }) = parse_proxy_header(input) else { panic!() };
/// assert_eq!(
///     header,
///     ProxyHeader {
///         version: ProxyVersion::V1,
///         command: ProxyCommand::Proxy,
///         source: Some("192.168.0.1:56324".parse().unwrap()),
///         destination: Some("192.168.0.11:443".parse().unwrap()),
///     }
/// );
/// assert_eq!(&input[len..], b"GET / HTTP/1.1\r\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The format the header came in.
    pub version: ProxyVersion,
    /// Whether the connection was relayed for a client ([`ProxyCommand::Proxy`]) or made
    /// by the proxy itself ([`ProxyCommand::Local`]). Always `Proxy` in version 1.
    pub command: ProxyCommand,
    /// The client's address: where the relayed connection came from.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (usually the proxy's listening address).
    pub destination: Option<SocketAddr>,
}

/// The format of a PROXY protocol header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyVersion {
    /// Version 1: one line of text, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, at most
    /// [`MAX_V1_HEADER`] bytes.
    V1,
    /// Version 2: a 16-byte binary header (a 12-byte signature, version and command, family
    /// and transport, length), then the addresses and TLVs.
    V2,
}

/// Why the connection a PROXY protocol header begins exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyCommand {
    /// The proxy made the connection itself (a health check): the header carries no
    /// addresses to use, and the connection's own endpoints are the real ones. Version 2
    /// only.
    Local,
    /// The proxy relays the connection of a client, whose addresses the header carries
    /// (unless their family is one without IP addresses, or a version 1 `UNKNOWN`).
    Proxy,
}

/// The longest version 1 header, in bytes, its `\r\n` included: the specification's worst
/// case, `PROXY UNKNOWN` followed by two full-length IPv6 addresses and two 5-digit ports.
/// A line without its `\r\n` in this many bytes is refused as
/// [`ProxyError::TooLong`](crate::ProxyError::TooLong).
pub const MAX_V1_HEADER: usize = 107;

/// The longest version 2 header accepted, in bytes: the 16-byte fixed part and the block of
/// addresses and TLVs its length field announces.
///
/// The field could announce up to 65,535 bytes; real headers carry a few dozen bytes of
/// addresses and a few hundred of TLVs at most (an authority, a unique ID of up to 128 bytes,
/// TLS details). A header announcing more than 4 KiB in all is refused as
/// [`ProxyError::TooLong`](crate::ProxyError::TooLong) as soon as its length field arrives,
/// so that a peer cannot make a connection buffer 64 KiB before it is known to be bad.
pub const MAX_V2_HEADER: usize = 4096;

/// What a version 1 header begins with: `PROXY` and one space.
pub(crate) const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What a version 2 header begins with: 12 bytes that no text protocol starts with.
pub(crate) const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The length of a version 2 header's fixed part: signature, version and command, family
/// and transport, and the 2-byte length of what follows.
pub(crate) const V2_FIXED_LEN: usize = 16;

// Room for the largest address block (UNIX: 216 bytes) and TLVs after it.
const _: () = assert!(MAX_V2_HEADER > V2_FIXED_LEN + 216);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_v1_line_of_the_specification_fits_the_limit() {
        let ffff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let worst = format!("PROXY UNKNOWN {ffff} {ffff} 65535 65535\r\n");
        assert_eq!(worst.len(), MAX_V1_HEADER);
        let tcp6 = format!("PROXY TCP6 {ffff} {ffff} 65535 65535\r\n");
        assert_eq!(tcp6.len(), 104);
    }

    #[test]
    fn the_signatures_are_the_specifications() {
        assert_eq!(V1_PREFIX, &[0x50, 0x52, 0x4F, 0x58, 0x59, 0x20]);
        assert_eq!(V2_SIGNATURE, &[0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]);
    }
}
