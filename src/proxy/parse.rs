//! [`parse_proxy_header`]: a PROXY protocol header, version 1 or 2, read off the front of a
//! stream's first bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::ProxyError;
use super::header::{
    ProxyCommand, ProxyHeader, ProxyVersion, MAX_V1_HEADER, MAX_V2_HEADER, V1_PREFIX, V2_FIXED_LEN, V2_SIGNATURE,
};

/// What [`parse_proxy_header`] found at the front of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The input is the beginning of a header that may still turn out valid: call again with
    /// the same bytes and more.
    Incomplete,
    /// A whole, valid header.
    Header {
        /// What the header says.
        header: ProxyHeader,
        /// How many bytes of the input the header took: the stream proper begins at
        /// `input[len..]`.
        len: usize,
    },
}

/// Reads the PROXY protocol header (version 1 or 2, as HAProxy's specification defines them)
/// at the front of `buf`, the first bytes a connection received.
///
/// Either version is accepted, told apart by the first bytes. `buf` may hold the stream's
/// bytes after the header too: [`Parsed::Header`]'s `len` says where the header ends. While
/// `buf` is a proper prefix of a header that may still turn out valid (it ends within the
/// `PROXY ` prefix or the version 2 signature, a version 1 line has not reached its `\r\n`,
/// a version 2 header has fewer than 16 + its announced length bytes), the answer is
/// [`Parsed::Incomplete`]: call again with the same bytes and more. The function is pure and
/// keeps no state, so each call reads `buf` afresh; a header is at most [`MAX_V2_HEADER`]
/// bytes, so that costs little.
///
/// The strictness is the specification's:
///
/// - Version 1: `PROXY`, then `TCP4`, `TCP6` or `UNKNOWN`, then for TCP the source address,
///   destination address, source port and destination port, each after exactly one space,
///   then `\r\n`. Addresses are of the protocol's family (IPv4 without leading zeros, IPv6 as
///   [`Ipv6Addr`] parses it, without zone or brackets), ports decimal in `0..=65535` without
///   sign or leading zeros. After `UNKNOWN` anything up to the `\r\n` is ignored. The
///   command is always [`ProxyCommand::Proxy`].
/// - Version 2: the 12-byte signature, version 2, command `LOCAL` or `PROXY`, a known address
///   family (`UNSPEC`, `INET`, `INET6`, `UNIX`) and transport (`UNSPEC`, `STREAM`, `DGRAM`),
///   and an address block at least as long as its family needs (12, 36 or 216 bytes). The
///   addresses are kept for `INET` and `INET6` over `STREAM` or `DGRAM`; other families
///   give none. TLVs after the addresses are skipped, but must fit in the header's length,
///   each with its 3-byte type and length. A `LOCAL` header's family and block are ignored,
///   as the specification asks.
///
/// # Errors
///
/// As soon as the bytes so far make a valid header impossible (more bytes would not undo
/// it):
///
/// - [`ProxyError::NotProxy`]: `buf` begins like neither `PROXY` nor the version 2 signature
///   (known from the first byte that differs from both).
/// - [`ProxyError::Malformed`]: a field or byte breaks the format (`PROXY` followed by
///   anything but a space is malformed version 1, not another protocol). In version 1 a
///   field is judged once the space or `\r` after it has arrived, and a field still arriving
///   as soon as it holds a byte it cannot hold, grows too long, or (a port) goes over 65535;
///   a `\r` or `\n` is judged once the byte after it is there. In version 2 the version and
///   command once byte 13 has arrived, the family once byte 14 has, the block's length
///   against the family once bytes 15 and 16 have, the TLVs once the whole header has.
/// - [`ProxyError::TooLong`]: a version 1 line has no `\r` within its first 106 bytes (so no
///   `\r\n` within [`MAX_V1_HEADER`]), or a version 2 header's length field makes it longer
///   than [`MAX_V2_HEADER`], known from its first 16 bytes.
///
/// So a peer cannot make the receiver buffer more than `MAX_V2_HEADER` bytes waiting for a
/// header, and the connection should be closed on any error: the specification forbids
/// guessing whether a header is there.
///
/// # Examples
///
/// ```
/// use kingpin::{parse_proxy_header, Parsed, ProxyError};
///
/// let wire = b"PROXY TCP6 2001:db8::1 ::1 51234 443\r\nhello";
/// // The header arrives in pieces: wait for the rest.
/// assert_eq!(parse_proxy_header(&wire[..20]), Ok(Parsed::Incomplete));
/// match parse_proxy_header(wire)? {
///     Parsed::Header { header, len } => {
///         assert_eq!(header.source, Some("[2001:db8::1]:51234".parse().unwrap()));
///         assert_eq!(&wire[len..], b"hello");
///     }
///     Parsed::Incomplete => unreachable!("the whole line is there"),
/// }
///
/// // A bad field is refused as soon as it is there, before the line ends.
/// assert!(matches!(parse_proxy_header(b"PROXY TCP4 10.0.0.x"), Err(ProxyError::Malformed(_))));
/// # Ok::<(), ProxyError>(())
/// ```
pub fn parse_proxy_header(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if could_start(buf, V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if could_start(buf, V1_SIGNATURE) {
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

/// What identifies a version 1 header, as the specification puts it: `PROXY`, which must be
/// followed by a space.
const V1_SIGNATURE: &[u8; 5] = b"PROXY";

/// Whether `buf` agrees with `signature` as far as both go.
fn could_start(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

// ---------------------------------------------------------------------------------------------
// Version 1
// ---------------------------------------------------------------------------------------------

/// The protocols a version 1 line may name.
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

/// The fields after `TCP4` or `TCP6`, in their order, as error messages name them.
const V1_FIELDS: [&str; 4] = ["source address", "destination address", "source port", "destination port"];

/// The longest text of an IPv4 address, `255.255.255.255`.
const MAX_IPV4_TEXT: usize = 15;

/// The longest text of an IPv6 address, six groups and an IPv4 address:
/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`.
const MAX_IPV6_TEXT: usize = 45;

/// A version 1 line: `buf` starts with `PROXY` or a prefix of it.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(&after) = buf.get(V1_SIGNATURE.len()) else { return Ok(Parsed::Incomplete) };
    if after != b' ' {
        return Err(ProxyError::malformed(format!("\"PROXY\" followed by '{}', not a space", after.escape_ascii())));
    }
    // A line of MAX_V1_HEADER bytes has its '\r' at MAX_V1_HEADER - 2: look no further.
    let window = &buf[..buf.len().min(MAX_V1_HEADER - 1)];
    let (body, len) = match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(p) if buf[p] == b'\n' => return Err(ProxyError::malformed("a line feed without a carriage return")),
        Some(p) => match buf.get(p + 1) {
            Some(b'\n') => (&buf[V1_PREFIX.len()..p], Some(p + 2)),
            Some(_) => return Err(ProxyError::malformed("a carriage return not followed by a line feed")),
            None => (&buf[V1_PREFIX.len()..p], None),
        },
        None if window.len() == MAX_V1_HEADER - 1 => {
            // Junk is said to be junk, though the line is too long anyway.
            v1_body(&window[V1_PREFIX.len()..], false)?;
            return Err(ProxyError::TooLong);
        }
        None => (&buf[V1_PREFIX.len()..], None),
    };
    let addresses = v1_body(body, len.is_some())?;
    let Some(len) = len else { return Ok(Parsed::Incomplete) };
    let header = ProxyHeader {
        version: ProxyVersion::V1,
        command: ProxyCommand::Proxy,
        source: addresses.map(|(s, _)| s),
        destination: addresses.map(|(_, d)| d),
    };
    Ok(Parsed::Header { header, len })
}

/// The source and destination in `body`, a version 1 line after `PROXY ` and before its
/// `\r\n`, or `None` for `UNKNOWN`.
///
/// With `complete` false the line's end has not arrived: `body` is checked as the beginning
/// of a line, and `Ok` (always `None`) means it may still become a valid one.
fn v1_body(body: &[u8], complete: bool) -> Result<Option<(SocketAddr, SocketAddr)>, ProxyError> {
    let (protocol, rest) = match body.iter().position(|&b| b == b' ') {
        Some(sp) => (&body[..sp], Some(&body[sp + 1..])),
        None => (body, None),
    };
    let v6 = match protocol {
        // The rest of the line, if any, is to be ignored.
        b"UNKNOWN" => return Ok(None),
        b"TCP4" => false,
        b"TCP6" => true,
        _ if !complete && rest.is_none() && V1_PROTOCOLS.iter().any(|p| p.starts_with(protocol)) => return Ok(None),
        b"" => return Err(ProxyError::malformed("no protocol after \"PROXY \"")),
        _ => {
            return Err(ProxyError::malformed(format!(
                "protocol \"{}\" is none of TCP4, TCP6 and UNKNOWN",
                protocol.escape_ascii()
            )))
        }
    };
    let protocol = if v6 { "TCP6" } else { "TCP4" };
    let Some(rest) = rest else {
        return if complete { Err(ProxyError::malformed(format!("{protocol} without addresses"))) } else { Ok(None) };
    };
    let mut fields = rest.split(|&b| b == b' ').peekable();
    let mut ips = [IpAddr::V4(Ipv4Addr::UNSPECIFIED); 2];
    let mut ports = [0u16; 2];
    for (i, name) in V1_FIELDS.iter().enumerate() {
        let Some(field) = fields.next() else {
            return if complete {
                Err(ProxyError::malformed(format!("a {protocol} line without its {name}")))
            } else {
                Ok(None)
            };
        };
        // A field is whole once a space follows it or the line has ended.
        let whole = complete || fields.peek().is_some();
        if field.is_empty() && whole {
            return Err(ProxyError::malformed(format!("no {name}: two spaces in a row, or a space before the end")));
        }
        let bad = |what: &str| ProxyError::malformed(format!("{name} \"{}\" is not {what}", field.escape_ascii()));
        if i < 2 {
            let family = if v6 { "an IPv6 address" } else { "an IPv4 address" };
            if whole {
                ips[i] = ip(field, v6).ok_or_else(|| bad(family))?;
            } else if !could_be_ip(field, v6) {
                return Err(bad(family));
            }
        } else if !field.is_empty() {
            // Every non-empty beginning of a valid port is a valid port: one test serves both.
            ports[i - 2] = port(field).ok_or_else(|| bad("a port: decimal 0 to 65535, no sign, no leading zero"))?;
        }
    }
    if fields.next().is_some() {
        return Err(ProxyError::malformed(format!("a {protocol} line with a field after the destination port")));
    }
    if !complete {
        return Ok(None);
    }
    Ok(Some((SocketAddr::new(ips[0], ports[0]), SocketAddr::new(ips[1], ports[1]))))
}

/// The address `text` of the family `v6` says, if it is one.
fn ip(text: &[u8], v6: bool) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if v6 {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Whether `text` may be the beginning of an address of the family `v6` says: its bytes may be
/// in one, and it is not too long yet.
fn could_be_ip(text: &[u8], v6: bool) -> bool {
    if v6 {
        text.len() <= MAX_IPV6_TEXT && text.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        text.len() <= MAX_IPV4_TEXT && text.iter().all(|&b| b.is_ascii_digit() || b == b'.')
    }
}

/// The port `text` says, if it is decimal digits without a leading zero (but `0` itself) and
/// at most 65535. Every non-empty beginning of a valid port is one too.
fn port(text: &[u8]) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.iter().all(u8::is_ascii_digit);
    if !digits || (text.len() > 1 && text[0] == b'0') {
        return None;
    }
    let n = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

// ---------------------------------------------------------------------------------------------
// Version 2
// ---------------------------------------------------------------------------------------------

/// The address block of a version 2 family, as far as this parser reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// `UNSPEC`, or a family whose transport is `UNSPEC`: no addresses to read, and what the
    /// block holds is unknown (not checked as TLVs).
    Unspecified,
    /// TCP or UDP over IPv4: two 4-byte addresses, two ports.
    Inet,
    /// TCP or UDP over IPv6: two 16-byte addresses, two ports.
    Inet6,
    /// A UNIX socket: two 108-byte paths, not kept.
    Unix,
}

impl Block {
    /// The block of the family and transport byte `fam`, the header's 14th.
    fn of(fam: u8) -> Result<Block, ProxyError> {
        let (family, transport) = (fam >> 4, fam & 0x0f);
        if family > 3 {
            return Err(ProxyError::malformed(format!("unknown address family {family:#x}")));
        }
        if transport > 2 {
            return Err(ProxyError::malformed(format!("unknown transport protocol {transport:#x}")));
        }
        Ok(match (family, transport) {
            (_, 0) | (0, _) => Block::Unspecified,
            (1, _) => Block::Inet,
            (2, _) => Block::Inet6,
            _ => Block::Unix,
        })
    }

    /// How many bytes its addresses take, at least.
    fn len(self) -> usize {
        match self {
            Block::Unspecified => 0,
            Block::Inet => 12,
            Block::Inet6 => 36,
            Block::Unix => 216,
        }
    }

    /// The source and destination in `block` (at least [`Block::len`] bytes), if the family
    /// has IP addresses.
    fn addresses(self, block: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
        let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
        match self {
            Block::Inet => {
                let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(block[at], block[at + 1], block[at + 2], block[at + 3]));
                Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
            }
            Block::Inet6 => {
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&block[at..at + 16]);
                    IpAddr::V6(Ipv6Addr::from(octets))
                };
                Some((SocketAddr::new(ip(0), port(32)), SocketAddr::new(ip(16), port(34))))
            }
            Block::Unspecified | Block::Unix => None,
        }
    }
}

/// A version 2 header: `buf` starts with the signature or a prefix of it.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(&ver_cmd) = buf.get(V2_SIGNATURE.len()) else { return Ok(Parsed::Incomplete) };
    let version = ver_cmd >> 4;
    if version != 2 {
        return Err(ProxyError::malformed(format!("version {version} after the version 2 signature")));
    }
    let command = match ver_cmd & 0x0f {
        0 => ProxyCommand::Local,
        1 => ProxyCommand::Proxy,
        other => return Err(ProxyError::malformed(format!("unknown command {other:#x}"))),
    };
    let Some(&fam) = buf.get(V2_SIGNATURE.len() + 1) else { return Ok(Parsed::Incomplete) };
    // LOCAL: "discard the protocol block including the family which is ignored".
    let block = match command {
        ProxyCommand::Local => Block::Unspecified,
        ProxyCommand::Proxy => Block::of(fam)?,
    };
    let Some(length) = buf.get(V2_SIGNATURE.len() + 2..V2_FIXED_LEN) else { return Ok(Parsed::Incomplete) };
    let block_len = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let len = V2_FIXED_LEN + block_len;
    if len > MAX_V2_HEADER {
        return Err(ProxyError::TooLong);
    }
    if block_len < block.len() {
        return Err(ProxyError::malformed(format!(
            "an address block of {block_len} bytes, where its family needs {}",
            block.len()
        )));
    }
    let Some(bytes) = buf.get(V2_FIXED_LEN..len) else { return Ok(Parsed::Incomplete) };
    if block != Block::Unspecified {
        check_tlvs(&bytes[block.len()..])?;
    }
    let addresses = block.addresses(bytes);
    let header = ProxyHeader {
        version: ProxyVersion::V2,
        command,
        source: addresses.map(|(s, _)| s),
        destination: addresses.map(|(_, d)| d),
    };
    Ok(Parsed::Header { header, len })
}

/// Checks that `tlvs`, the bytes after a version 2 header's addresses, are whole TLVs: each a
/// type byte, a 2-byte big-endian length, and that many bytes of value.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    while !tlvs.is_empty() {
        let Some(head) = tlvs.get(..3) else {
            return Err(ProxyError::malformed(format!("{} bytes after the last TLV, too few for one", tlvs.len())));
        };
        let value_len = usize::from(u16::from_be_bytes([head[1], head[2]]));
        let Some(rest) = tlvs.get(3 + value_len..) else {
            return Err(ProxyError::malformed(format!(
                "a TLV of type {:#04x} and {value_len} bytes runs past the header's end",
                head[0]
            )));
        };
        tlvs = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::encode::{encode_proxy_v1, encode_proxy_v2, encode_proxy_v2_local};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(version: ProxyVersion, command: ProxyCommand, addrs: Option<(&str, &str)>) -> ProxyHeader {
        ProxyHeader { version, command, source: addrs.map(|(s, _)| addr(s)), destination: addrs.map(|(_, d)| addr(d)) }
    }

    fn v1(addrs: Option<(&str, &str)>) -> ProxyHeader {
        header(ProxyVersion::V1, ProxyCommand::Proxy, addrs)
    }

    fn v2(command: ProxyCommand, addrs: Option<(&str, &str)>) -> ProxyHeader {
        header(ProxyVersion::V2, command, addrs)
    }

    /// `input` parsed, which must be a whole header of `len` bytes.
    fn whole(input: &[u8]) -> (ProxyHeader, usize) {
        match parse_proxy_header(input) {
            Ok(Parsed::Header { header, len }) => (header, len),
            other => panic!("{:?}: {other:?}", input.escape_ascii().to_string()),
        }
    }

    /// Every proper prefix of `input[..len]` is incomplete.
    fn prefixes_incomplete(input: &[u8], len: usize) {
        for n in 0..len {
            assert_eq!(
                parse_proxy_header(&input[..n]),
                Ok(Parsed::Incomplete),
                "prefix {:?}",
                input[..n].escape_ascii().to_string()
            );
        }
    }

    fn malformed(input: &[u8]) -> String {
        match parse_proxy_header(input) {
            Err(ProxyError::Malformed(m)) => m,
            other => panic!("{:?} is not malformed: {other:?}", input.escape_ascii().to_string()),
        }
    }

    /// A version 2 header: signature, `ver_cmd`, `fam`, the block's length, the block.
    fn v2_bytes(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend_from_slice(&[ver_cmd, fam]);
        out.extend_from_slice(&(block.len() as u16).to_be_bytes());
        out.extend_from_slice(block);
        out
    }

    const TCP4_BLOCK: [u8; 12] = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];

    // -----------------------------------------------------------------------------------------
    // Version 1
    // -----------------------------------------------------------------------------------------

    #[test]
    fn v1_tcp4_with_the_stream_after_it() {
        let input = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n";
        let (h, len) = whole(input);
        assert_eq!(h, v1(Some(("192.168.0.1:56324", "192.168.0.11:443"))));
        assert_eq!(&input[len..], b"GET / HTTP/1.1\r\n\r\n");
        prefixes_incomplete(input, len);
        let (h, len) = whole(b"PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
        assert_eq!((h, len), (v1(Some(("255.255.255.255:65535", "0.0.0.0:0"))), 44));
    }

    #[test]
    fn v1_tcp6_in_every_spelling_ipv6addr_reads() {
        let ffff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {ffff} {} 65535 65535\r\n", ffff.to_uppercase());
        let (h, len) = whole(line.as_bytes());
        let full = format!("[{ffff}]:65535");
        assert_eq!((h, len), (v1(Some((&full, &full))), 104));
        prefixes_incomplete(line.as_bytes(), len);
        let input = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 22\r\nSSH-2.0";
        let (h, len) = whole(input);
        assert_eq!(h, v1(Some(("[2001:db8::1]:1", "[::ffff:10.0.0.1]:22"))));
        assert_eq!(&input[len..], b"SSH-2.0");
        let (h, _) = whole(b"PROXY TCP6 0:0:0:0:0:0:0:1 :: 80 8080\r\n");
        assert_eq!(h, v1(Some(("[::1]:80", "[::]:8080"))));
    }

    #[test]
    fn v1_unknown_ignores_what_follows_it() {
        for input in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n",
            b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWN \r\n",
            b"PROXY UNKNOWN  any\tthing \x00\xff at all \r\n",
        ] {
            let mut with_stream = input.to_vec();
            with_stream.extend_from_slice(b"rest");
            let (h, len) = whole(&with_stream);
            assert_eq!((h, len), (v1(None), input.len()));
            prefixes_incomplete(input, len);
        }
    }

    #[test]
    fn v1_of_the_longest_length_passes_and_one_more_byte_does_not() {
        let pad = "f".repeat(MAX_V1_HEADER - "PROXY UNKNOWN \r\n".len());
        let longest = format!("PROXY UNKNOWN {pad}\r\n");
        assert_eq!(longest.len(), MAX_V1_HEADER);
        assert_eq!(whole(longest.as_bytes()), (v1(None), MAX_V1_HEADER));
        prefixes_incomplete(longest.as_bytes(), MAX_V1_HEADER);

        let over = format!("PROXY UNKNOWN {pad}f\r\n");
        assert_eq!(parse_proxy_header(over.as_bytes()), Err(ProxyError::TooLong));
        // Known from the 106th byte: the '\r' could be there at the latest.
        assert_eq!(parse_proxy_header(&over.as_bytes()[..MAX_V1_HEADER - 2]), Ok(Parsed::Incomplete));
        assert_eq!(parse_proxy_header(&over.as_bytes()[..MAX_V1_HEADER - 1]), Err(ProxyError::TooLong));
        let flood = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100_000]].concat();
        assert_eq!(parse_proxy_header(&flood), Err(ProxyError::TooLong));
        let spaces = [b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2".as_slice(), &[b'0'; 200]].concat();
        assert!(matches!(parse_proxy_header(&spaces), Err(ProxyError::Malformed(_))), "junk before length");
    }

    #[test]
    fn v1_every_way_to_be_malformed() {
        let cases: &[&[u8]] = &[
            // Line endings.
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
            b"PROXY UNKNOWN\n",
            b"PROXY UNKNOWN\r ",
            b"PROXY \n",
            // Spaces.
            b"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n",
            // Fields missing or extra.
            b"PROXY \r\n",
            b"PROXY TCP4\r\n",
            b"PROXY TCP4 \r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            // Protocols.
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY UNKNOW\r\n",
            b"PROXY TCP\r\n",
            // Addresses.
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4:80 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 ::ffff:5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 [::1] ::1 1 2\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
            b"PROXY TCP6 ::g ::1 1 2\r\n",
            b"PROXY TCP6 00000::1 ::1 1 2\r\n",
            // Ports.
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80a 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xd9\xa1\r\n",
        ];
        for input in cases {
            let message = malformed(input);
            assert!(!message.is_empty());
            let mut with_stream = input.to_vec();
            with_stream.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(
                parse_proxy_header(&with_stream),
                Err(ProxyError::Malformed(message)),
                "more bytes change nothing"
            );
        }
    }

    #[test]
    fn v1_errors_come_as_soon_as_a_field_cannot_become_valid() {
        for input in [
            &b"PROXYX"[..],
            b"PROXY X",
            b"PROXY TCP44",
            b"PROXY UNKNOWNX",
            b"PROXY  ",
            b"PROXY TCP4 1.2.3.x",
            b"PROXY TCP4 1.2.3.4.5.6.7.8.9",
            b"PROXY TCP4 ::",
            b"PROXY TCP6 2001:db8::1/64",
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
            b"PROXY TCP4 1.2.3.4  ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 655350",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 00",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
            b"PROXY TCP4 1.2.3 ",
        ] {
            malformed(input);
        }
        // Partial fields that may still become valid wait.
        for input in [
            &b"PROXY UNKNOWN"[..],
            b"PROXY TCP4 1.2.3.",
            b"PROXY TCP4 1.2.3.4 5",
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 0",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 6553",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65535",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65535\r",
            b"PROXY TCP4 1.2.3.4 ",
            b"PROXY TCP4 ",
            b"PROXY TC",
        ] {
            assert_eq!(parse_proxy_header(input), Ok(Parsed::Incomplete), "{:?}", input.escape_ascii().to_string());
        }
    }

    // -----------------------------------------------------------------------------------------
    // Version 2
    // -----------------------------------------------------------------------------------------

    #[test]
    fn v2_tcp4_and_udp4_with_the_stream_after_them() {
        for fam in [0x11, 0x12] {
            let mut input = v2_bytes(0x21, fam, &TCP4_BLOCK);
            input.extend_from_slice(b"payload");
            let (h, len) = whole(&input);
            assert_eq!(h, v2(ProxyCommand::Proxy, Some(("192.168.0.1:56324", "192.168.0.11:443"))));
            assert_eq!((len, &input[len..]), (28, &b"payload"[..]));
            prefixes_incomplete(&input, len);
        }
    }

    #[test]
    fn v2_tcp6_and_udp6() {
        let mut block = Vec::new();
        block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        block.extend_from_slice(&[0xff, 0xff, 0x00, 0x00]);
        for fam in [0x21, 0x22] {
            let input = v2_bytes(0x21, fam, &block);
            let (h, len) = whole(&input);
            assert_eq!(h, v2(ProxyCommand::Proxy, Some(("[2001:db8::1]:65535", "[::1]:0"))));
            assert_eq!(len, 52);
            prefixes_incomplete(&input, len);
        }
    }

    #[test]
    fn v2_local_ignores_its_family_and_block() {
        let (h, len) = whole(&v2_bytes(0x20, 0x00, &[]));
        assert_eq!((h, len), (v2(ProxyCommand::Local, None), 16));
        // The family is ignored, even one no PROXY header may carry, and so is the block.
        for fam in [0x11, 0x21, 0xff] {
            let mut input = v2_bytes(0x20, fam, &TCP4_BLOCK[..5]);
            input.extend_from_slice(b"\x16\x03\x01");
            let (h, len) = whole(&input);
            assert_eq!((h, len), (v2(ProxyCommand::Local, None), 21));
            prefixes_incomplete(&input, len);
        }
    }

    #[test]
    fn v2_families_without_ip_addresses_give_none() {
        // UNSPEC: the block, whatever it holds, is skipped (not read as TLVs).
        for (fam, block) in [(0x00, &[][..]), (0x00, &[1, 2, 3, 4, 5][..]), (0x10, &TCP4_BLOCK[..]), (0x01, &[9][..])] {
            let input = v2_bytes(0x21, fam, block);
            assert_eq!(whole(&input), (v2(ProxyCommand::Proxy, None), 16 + block.len()));
        }
        // UNIX: two 108-byte paths, then TLVs.
        let mut paths = [0u8; 216];
        paths[..9].copy_from_slice(b"/run/a.so");
        for fam in [0x31, 0x32] {
            let input = v2_bytes(0x21, fam, &paths);
            assert_eq!(whole(&input), (v2(ProxyCommand::Proxy, None), 232));
            let tlv = [&paths[..], &[0x04, 0x00, 0x01, 0x00]].concat();
            assert_eq!(whole(&v2_bytes(0x21, fam, &tlv)), (v2(ProxyCommand::Proxy, None), 236));
        }
    }

    #[test]
    fn v2_tlvs_are_skipped_and_counted() {
        let mut block = TCP4_BLOCK.to_vec();
        block.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // ALPN
        block.extend_from_slice(&[0x02, 0x00, 0x0b]); // authority
        block.extend_from_slice(b"example.com");
        block.extend_from_slice(&[0x04, 0x00, 0x00]); // an empty NOOP
        block.extend_from_slice(&[0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0]); // SSL
        let mut input = v2_bytes(0x21, 0x11, &block);
        let end = input.len();
        input.extend_from_slice(b"GET /");
        let (h, len) = whole(&input);
        assert_eq!(h, v2(ProxyCommand::Proxy, Some(("192.168.0.1:56324", "192.168.0.11:443"))));
        assert_eq!((len, &input[len..]), (end, &b"GET /"[..]));
        prefixes_incomplete(&input, len);
    }

    #[test]
    fn v2_every_way_to_be_malformed() {
        let tlv_cut = |tail: &[u8]| v2_bytes(0x21, 0x11, &[&TCP4_BLOCK[..], tail].concat());
        let cases = [
            v2_bytes(0x11, 0x11, &TCP4_BLOCK), // version 1
            v2_bytes(0x01, 0x11, &TCP4_BLOCK), // version 0
            v2_bytes(0x31, 0x11, &TCP4_BLOCK), // version 3
            v2_bytes(0xf1, 0x11, &TCP4_BLOCK),
            v2_bytes(0x22, 0x11, &TCP4_BLOCK), // command 2
            v2_bytes(0x2f, 0x11, &TCP4_BLOCK),
            v2_bytes(0x21, 0x41, &TCP4_BLOCK), // family 4
            v2_bytes(0x21, 0xf1, &TCP4_BLOCK),
            v2_bytes(0x21, 0x13, &TCP4_BLOCK), // transport 3
            v2_bytes(0x21, 0x0f, &TCP4_BLOCK),
            v2_bytes(0x21, 0x11, &TCP4_BLOCK[..11]), // blocks too short for their family
            v2_bytes(0x21, 0x12, &[]),
            v2_bytes(0x21, 0x21, &[0; 35]),
            v2_bytes(0x21, 0x22, &TCP4_BLOCK),
            v2_bytes(0x21, 0x31, &[0; 215]),
            v2_bytes(0x21, 0x32, &[0; 36]),
            tlv_cut(&[0x01]), // TLVs cut short
            tlv_cut(&[0x01, 0x00]),
            tlv_cut(&[0x01, 0x00, 0x01]),
            tlv_cut(&[0x01, 0x00, 0x03, b'a', b'b']),
            tlv_cut(&[0x04, 0x00, 0x00, 0x01, 0xff, 0xff, b'a']),
            v2_bytes(0x21, 0x31, &[&[0u8; 216][..], &[0x04, 0x00, 0x02, 0]].concat()),
        ];
        for input in cases {
            let message = malformed(&input);
            let mut with_stream = input.clone();
            with_stream.extend_from_slice(&[0x04, 0x00, 0x00, 0, 0]);
            assert_eq!(
                parse_proxy_header(&with_stream),
                Err(ProxyError::Malformed(message)),
                "more bytes change nothing"
            );
        }
    }

    #[test]
    fn v2_errors_come_as_soon_as_their_byte_arrives() {
        let sig = V2_SIGNATURE.as_slice();
        malformed(&[sig, &[0x11]].concat());
        malformed(&[sig, &[0x23]].concat());
        malformed(&[sig, &[0x21, 0x51]].concat());
        malformed(&[sig, &[0x21, 0x14]].concat());
        malformed(&[sig, &[0x21, 0x11, 0, 11]].concat());
        malformed(&[sig, &[0x21, 0x21, 0, 12]].concat());
        // Good so far: they wait.
        for good in [&[0x21][..], &[0x20, 0xff], &[0x21, 0x11, 0], &[0x21, 0x11, 0, 12], &[0x20, 0x00, 0xff]] {
            assert_eq!(parse_proxy_header(&[sig, good].concat()), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn v2_over_the_limit_is_refused_from_its_length_field() {
        let most = (MAX_V2_HEADER - V2_FIXED_LEN) as u16;
        for (ver_cmd, fam) in [(0x21, 0x11), (0x20, 0x00), (0x21, 0x00)] {
            let head = |n: u16| [V2_SIGNATURE.as_slice(), &[ver_cmd, fam], &n.to_be_bytes()].concat();
            assert_eq!(parse_proxy_header(&head(most + 1)), Err(ProxyError::TooLong));
            assert_eq!(parse_proxy_header(&head(u16::MAX)), Err(ProxyError::TooLong));
            assert_eq!(parse_proxy_header(&head(most)), Ok(Parsed::Incomplete));
        }
        // A header of exactly the limit: addresses and one big NOOP TLV.
        let mut block = TCP4_BLOCK.to_vec();
        let noop = most as usize - block.len() - 3;
        block.extend_from_slice(&[0x04]);
        block.extend_from_slice(&(noop as u16).to_be_bytes());
        block.resize(most as usize, 0);
        let input = v2_bytes(0x21, 0x11, &block);
        assert_eq!(whole(&input).1, MAX_V2_HEADER);
    }

    // -----------------------------------------------------------------------------------------
    // Either
    // -----------------------------------------------------------------------------------------

    #[test]
    fn other_protocols_are_not_proxy_from_their_first_byte() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"G",
            b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROX TCP4",
            b" PROXY",
            b"\x16\x03\x01\x02\x00", // a TLS ClientHello
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c",
            b"\r\n\r\n\x01",
            b"\r\r",
            b"\0",
        ] {
            assert_eq!(parse_proxy_header(input), Err(ProxyError::NotProxy), "{:?}", input.escape_ascii().to_string());
        }
    }

    #[test]
    fn beginnings_of_either_signature_wait() {
        for n in 0..=V1_PREFIX.len() {
            assert_eq!(parse_proxy_header(&V1_PREFIX[..n]), Ok(Parsed::Incomplete));
        }
        for n in 0..=V2_SIGNATURE.len() {
            assert_eq!(parse_proxy_header(&V2_SIGNATURE[..n]), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn what_the_encoders_write_parses_back() {
        let (s4, d4, s6) = (addr("10.1.2.3:40000"), addr("10.9.8.7:443"), addr("[2001:db8::7]:1"));
        let mapped = addr("[::ffff:10.9.8.7]:443");
        for (src, dst, want) in [(s4, d4, (s4, d4)), (s6, d4, (s6, mapped)), (s6, s6, (s6, s6))] {
            let (h, len) = whole(&encode_proxy_v1(src, dst));
            assert_eq!((h.version, h.source, h.destination), (ProxyVersion::V1, Some(want.0), Some(want.1)));
            assert_eq!(len, encode_proxy_v1(src, dst).len());
            let (h, len) = whole(&encode_proxy_v2(src, dst));
            assert_eq!(
                (h.version, h.command, h.source, h.destination),
                (ProxyVersion::V2, ProxyCommand::Proxy, Some(want.0), Some(want.1))
            );
            assert_eq!(len, encode_proxy_v2(src, dst).len());
        }
        assert_eq!(whole(&encode_proxy_v2_local()), (v2(ProxyCommand::Local, None), 16));
    }
}
