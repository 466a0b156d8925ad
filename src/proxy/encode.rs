//! [`encode_proxy_v1`], [`encode_proxy_v2`] and [`encode_proxy_v2_local`]: PROXY protocol
//! headers to send first on a connection to a server that expects them.

use std::net::{IpAddr, SocketAddr};

use super::header::{V1_PREFIX, V2_FIXED_LEN, V2_SIGNATURE};

/// Version 2, command `PROXY`.
const V2_PROXY: u8 = 0x21;

/// Version 2, command `LOCAL`.
const V2_LOCAL: u8 = 0x20;

/// Version 2 family and transport: `UNSPEC` (no addresses).
const V2_UNSPEC: u8 = 0x00;

/// Version 2 family and transport: TCP over IPv4.
const V2_TCP4: u8 = 0x11;

/// Version 2 family and transport: TCP over IPv6.
const V2_TCP6: u8 = 0x21;

/// A version 1 header (one line of text) saying the connection was relayed from `source`
/// (the client) to `destination` (the address it connected to).
///
/// Two IPv4 addresses make a `TCP4` line; otherwise the line is `TCP6`, and an IPv4 address
/// beside an IPv6 one is written as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), since a line
/// has one family. IPv6 addresses are written as [`Ipv6Addr`](std::net::Ipv6Addr) displays
/// them (compressed, lower case); their scope ID and flow label are not part of the format.
/// The line is at most 104 bytes, `\r\n` included.
///
/// # Examples
///
/// ```
/// use kingpin::encode_proxy_v1;
///
/// let line = encode_proxy_v1("192.168.0.1:56324".parse()?, "192.168.0.11:443".parse()?);
/// assert_eq!(line, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
///
/// let line = encode_proxy_v1("[2001:db8::1]:5000".parse()?, "10.0.0.1:80".parse()?);
/// assert_eq!(line, b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 5000 80\r\n");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn encode_proxy_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (protocol, src, dst) = match one_family(source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ("TCP4", s.to_string(), d.to_string()),
        (s, d) => ("TCP6", s.to_string(), d.to_string()),
    };
    let mut out = V1_PREFIX.to_vec();
    let rest = format!("{protocol} {src} {dst} {} {}\r\n", source.port(), destination.port());
    out.extend_from_slice(rest.as_bytes());
    out
}

/// A version 2 header (binary) with the command `PROXY`, saying the connection was relayed
/// from `source` (the client) to `destination` (the address it connected to), over TCP.
///
/// Two IPv4 addresses make a TCP over IPv4 header of 28 bytes; otherwise it is TCP over IPv6,
/// 52 bytes, with an IPv4 address beside an IPv6 one written as its IPv4-mapped IPv6 form.
/// No TLVs are written.
///
/// # Examples
///
/// ```
/// use kingpin::encode_proxy_v2;
///
/// let header = encode_proxy_v2("192.168.0.1:56324".parse()?, "192.168.0.11:443".parse()?);
/// assert_eq!(header.len(), 28);
/// assert_eq!(&header[12..16], [0x21, 0x11, 0, 12]); // v2 PROXY, TCP over IPv4, 12 bytes
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn encode_proxy_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut block = Vec::with_capacity(36);
    let fam = match one_family(source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            V2_TCP4
        }
        (s, d) => {
            block.extend_from_slice(&v6_octets(s));
            block.extend_from_slice(&v6_octets(d));
            V2_TCP6
        }
    };
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    v2(V2_PROXY, fam, &block)
}

/// A version 2 header with the command `LOCAL`, the family `UNSPEC` and no addresses: 16
/// bytes saying the connection is the proxy's own (a health check, say) and its endpoints are
/// the real ones.
///
/// # Examples
///
/// ```
/// use kingpin::encode_proxy_v2_local;
///
/// assert_eq!(encode_proxy_v2_local(), b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00");
/// ```
pub fn encode_proxy_v2_local() -> Vec<u8> {
    v2(V2_LOCAL, V2_UNSPEC, &[])
}

/// A version 2 header of `ver_cmd`, `fam` and the address block `block` (at most a few dozen
/// bytes here).
fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(V2_FIXED_LEN + block.len());
    out.extend_from_slice(V2_SIGNATURE);
    out.extend_from_slice(&[ver_cmd, fam]);
    // The blocks written here are 0, 12 or 36 bytes: the cast is exact.
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

/// The two addresses in one family: unchanged if they share one, else the IPv4 one mapped
/// into IPv6.
fn one_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V6(b)) => (IpAddr::V6(a.to_ipv6_mapped()), IpAddr::V6(b)),
        (IpAddr::V6(a), IpAddr::V4(b)) => (IpAddr::V6(a), IpAddr::V6(b.to_ipv6_mapped())),
        same => same,
    }
}

/// The 16 bytes of `ip` as an IPv6 address (IPv4-mapped if it is IPv4).
fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV6;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_lines_are_the_specifications() {
        let line = encode_proxy_v1(addr("255.255.255.255:65535"), addr("0.0.0.0:0"));
        assert_eq!(line, b"PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
        let ffff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = encode_proxy_v1(addr(&format!("[{ffff}]:65535")), addr(&format!("[{ffff}]:65535")));
        assert_eq!(line, format!("PROXY TCP6 {ffff} {ffff} 65535 65535\r\n").as_bytes());
        assert_eq!(line.len(), 104, "the longest TCP6 line");
        let line = encode_proxy_v1(addr("[::1]:1"), addr("[2001:db8::]:2"));
        assert_eq!(line, b"PROXY TCP6 ::1 2001:db8:: 1 2\r\n");
    }

    #[test]
    fn mixed_families_become_tcp6_with_the_ipv4_address_mapped() {
        let (v4, v6) = (addr("10.0.0.1:80"), addr("[::1]:5000"));
        assert_eq!(encode_proxy_v1(v4, v6), b"PROXY TCP6 ::ffff:10.0.0.1 ::1 80 5000\r\n");
        assert_eq!(encode_proxy_v1(v6, v4), b"PROXY TCP6 ::1 ::ffff:10.0.0.1 5000 80\r\n");
        let h = encode_proxy_v2(v4, v6);
        assert_eq!((h.len(), h[13]), (52, 0x21));
        assert_eq!(&h[16..32], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(&h[32..48], &std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(&h[48..], &[0, 80, 0x13, 0x88]);
    }

    #[test]
    fn v2_headers_are_the_specifications() {
        let h = encode_proxy_v2(addr("192.168.0.1:56324"), addr("192.168.0.11:443"));
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
        want.extend_from_slice(&[192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb]);
        assert_eq!(h, want);

        let h = encode_proxy_v2(addr("[2001:db8::1]:1"), addr("[::2]:65535"));
        assert_eq!(&h[..12], V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(&h[16..20], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(&h[32..48], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&h[48..], &[0, 1, 0xff, 0xff]);

        let local = encode_proxy_v2_local();
        assert_eq!(&local[..12], V2_SIGNATURE);
        assert_eq!(&local[12..], &[0x20, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn scope_and_flow_label_are_not_written() {
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 0x12345, 3));
        assert_eq!(encode_proxy_v1(scoped, scoped), b"PROXY TCP6 fe80::1 fe80::1 7 7\r\n");
        assert_eq!(encode_proxy_v2(scoped, scoped).len(), 52);
    }
}
