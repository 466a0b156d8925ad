//! Short property runs (a few hundred cases each) over the PROXY protocol parser and encoders,
//! through the crate's public API: what the encoders write parses back; a header cut into any
//! chunks is incomplete until its last byte and then the same header; random bytes and
//! mutated headers never panic, never claim more bytes than given, and keep their verdict
//! when more bytes follow. Each property names what it proves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use kingpin::{
    encode_proxy_v1, encode_proxy_v2, encode_proxy_v2_local, parse_proxy_header, Parsed, ProxyCommand, ProxyError,
    ProxyHeader, ProxyVersion, MAX_V1_HEADER, MAX_V2_HEADER,
};
use proptest::prelude::*;

/// The version 2 signature, from the specification.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Cases of each property.
const CASES: u32 = 512;

/// Cuts `data` at `cuts` (any positions, sorted and clamped here): the ends of the pieces.
fn piece_ends(data: &[u8], cuts: &[usize]) -> Vec<usize> {
    let mut at: Vec<usize> = cuts.iter().map(|&c| c % (data.len() + 1)).collect();
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at
}

/// `parse_proxy_header`'s answer, checked against what any answer must be: a header takes
/// at least one byte and no more than it was given, and parses alone as itself.
fn parse_checked(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let got = parse_proxy_header(buf);
    if let Ok(Parsed::Header { header, len }) = &got {
        assert!(*len > 0 && *len <= buf.len(), "len {len} of {} bytes", buf.len());
        let alone = parse_proxy_header(&buf[..*len]);
        assert_eq!(alone, Ok(Parsed::Header { header: header.clone(), len: *len }), "the header alone");
        match header.version {
            ProxyVersion::V1 => assert!(*len <= MAX_V1_HEADER),
            ProxyVersion::V2 => assert!(*len <= MAX_V2_HEADER && *len >= 16),
        }
    }
    got
}

/// Checks that the verdict on `buf` stands when `more` follows: a header stays the same
/// header, and an error the same kind of error (as soon as an error is certain, no byte after
/// can undo it).
fn verdict_is_final(buf: &[u8], more: &[u8]) {
    let before = parse_checked(buf);
    let after = parse_checked(&[buf, more].concat());
    match before {
        Ok(Parsed::Incomplete) => {}
        Ok(header) => assert_eq!(after, Ok(header)),
        Err(e) => {
            let same = matches!(&after, Err(a) if std::mem::discriminant(a) == std::mem::discriminant(&e));
            assert!(same, "{e:?} then {after:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        3 => any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        1 => any::<[u8; 4]>().prop_map(|o| IpAddr::V6(Ipv4Addr::from(o).to_ipv6_mapped())),
        1 => prop::sample::select(vec![
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::from([0xffff; 8])),
        ]),
    ]
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    (ip(), prop_oneof![any::<u16>(), Just(0u16), Just(65535u16)]).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

/// What parsing a header for `source` and `destination` from the encoders gives: both in one
/// family, an IPv4 one beside an IPv6 one mapped.
fn expected_addrs(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let map = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if source.is_ipv4() == destination.is_ipv4() {
        (source, destination)
    } else {
        (map(source), map(destination))
    }
}

fn header(version: ProxyVersion, command: ProxyCommand, addrs: Option<(SocketAddr, SocketAddr)>) -> ProxyHeader {
    ProxyHeader { version, command, source: addrs.map(|a| a.0), destination: addrs.map(|a| a.1) }
}

/// Version 2 TLVs: a type and a short value each.
fn tlvs() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..24)), 0..5).prop_map(|tlvs| {
        let mut out = Vec::new();
        for (ty, value) in tlvs {
            out.push(ty);
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            out.extend_from_slice(&value);
        }
        out
    })
}

fn v2_bytes(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[ver_cmd, fam]);
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

/// A valid header of any kind, and what it says.
fn valid_header() -> impl Strategy<Value = (Vec<u8>, ProxyHeader)> {
    prop_oneof![
        // What the encoders write.
        (socket_addr(), socket_addr()).prop_map(|(s, d)| {
            (encode_proxy_v1(s, d), header(ProxyVersion::V1, ProxyCommand::Proxy, Some(expected_addrs(s, d))))
        }),
        (socket_addr(), socket_addr()).prop_map(|(s, d)| {
            (encode_proxy_v2(s, d), header(ProxyVersion::V2, ProxyCommand::Proxy, Some(expected_addrs(s, d))))
        }),
        Just((encode_proxy_v2_local(), header(ProxyVersion::V2, ProxyCommand::Local, None))),
        // Version 1 UNKNOWN, with anything but CR and LF after it, up to the longest line.
        prop::option::of(prop::collection::vec(
            any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
            0..=91
        ))
        .prop_map(|tail| {
            let mut line = b"PROXY UNKNOWN".to_vec();
            if let Some(tail) = tail {
                line.push(b' ');
                line.extend_from_slice(&tail);
            }
            line.extend_from_slice(b"\r\n");
            (line, header(ProxyVersion::V1, ProxyCommand::Proxy, None))
        }),
        // Version 2 TCP or UDP with TLVs.
        (socket_addr(), socket_addr(), any::<bool>(), tlvs()).prop_map(|(s, d, udp, tlvs)| {
            let (s, d) = expected_addrs(s, d);
            let mut block = Vec::new();
            let fam = match (s.ip(), d.ip()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    block.extend_from_slice(&a.octets());
                    block.extend_from_slice(&b.octets());
                    0x11
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    block.extend_from_slice(&a.octets());
                    block.extend_from_slice(&b.octets());
                    0x21
                }
                _ => unreachable!("one family"),
            } + u8::from(udp);
            block.extend_from_slice(&s.port().to_be_bytes());
            block.extend_from_slice(&d.port().to_be_bytes());
            block.extend_from_slice(&tlvs);
            (v2_bytes(0x21, fam, &block), header(ProxyVersion::V2, ProxyCommand::Proxy, Some((s, d))))
        }),
        // Version 2 UNIX with TLVs, UNSPEC with anything.
        (prop::sample::select(vec![0x31u8, 0x32]), any::<u8>(), tlvs()).prop_map(|(fam, fill, tlvs)| {
            let block = [&[fill; 216][..], &tlvs].concat();
            (v2_bytes(0x21, fam, &block), header(ProxyVersion::V2, ProxyCommand::Proxy, None))
        }),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|block| (v2_bytes(0x21, 0x00, &block), header(ProxyVersion::V2, ProxyCommand::Proxy, None))),
        // Version 2 LOCAL: family and block ignored.
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(fam, block)| (
            v2_bytes(0x20, fam, &block),
            header(ProxyVersion::V2, ProxyCommand::Local, None)
        )),
    ]
}

/// Bytes that are often near a header: random, or behind one of the signatures, or made of
/// the tokens of version 1 lines.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => prop::sample::select(vec![
            "PROXY", "PROXY ", " ", "  ", "TCP4", "TCP6", "UNKNOWN", "TCP", "\r\n", "\r", "\n", "1.2.3.4",
            "255.255.255.255", "256.1.1.1", "01.2.3.4", "::1", "::ffff:1.2.3.4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0", "80", "65535", "65536", "080", "+1", "-1", ".", ":", "\0",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => Just(V2_SIGNATURE.to_vec()),
        2 => prop::collection::vec(any::<u8>(), 1..8),
        1 => prop::sample::select(vec![0x20u8, 0x21, 0x11, 0x12, 0x22, 0x31, 0x32, 0x00, 0xff]).prop_map(|b| vec![b]),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (prop::sample::select(vec![&b"PROXY "[..], &V2_SIGNATURE[..]]), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(sig, rest)| [sig, &rest].concat()),
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat()),
    ]
}

/// A change to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, mask } if n > 0 => bytes[at % n] ^= mask,
        Mutation::Set { at, byte } if n > 0 => bytes[at % n] = byte,
        Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
        Mutation::Remove { at } if n > 0 => {
            bytes.remove(at % n);
        }
        Mutation::Truncate { at } => bytes.truncate(at % (n + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) Whatever addresses and ports, what the encoders write parses back as those
    /// addresses (an IPv4 one beside an IPv6 one mapped), with `len` the encoded length, and
    /// the bytes after it left alone.
    #[test]
    fn encoded_headers_parse_back(
        src in socket_addr(),
        dst in socket_addr(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let want = expected_addrs(src, dst);
        let encoded = [(ProxyVersion::V1, encode_proxy_v1(src, dst)), (ProxyVersion::V2, encode_proxy_v2(src, dst))];
        for (version, encoded) in encoded {
            let input = [&encoded[..], &payload].concat();
            let got = parse_checked(&input);
            let header = header(version, ProxyCommand::Proxy, Some(want));
            prop_assert_eq!(got, Ok(Parsed::Header { header, len: encoded.len() }));
        }
        prop_assert!(encode_proxy_v1(src, dst).len() <= 104);
        let local = [&encode_proxy_v2_local()[..], &payload].concat();
        let header = header(ProxyVersion::V2, ProxyCommand::Local, None);
        prop_assert_eq!(parse_checked(&local), Ok(Parsed::Header { header, len: 16 }));
    }

    /// (b) A valid header and a payload, cut anywhere into chunks and fed cumulatively, are
    /// incomplete until the header's last byte has arrived, then the same header of the same
    /// length whatever follows.
    #[test]
    fn any_chunking_waits_for_the_whole_header(
        (bytes, want) in valid_header(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let len = bytes.len();
        let input = [&bytes[..], &payload].concat();
        for end in piece_ends(&input, &cuts) {
            let got = parse_checked(&input[..end]);
            if end < len {
                prop_assert_eq!(got, Ok(Parsed::Incomplete), "{} of {} bytes", end, len);
            } else {
                prop_assert_eq!(got, Ok(Parsed::Header { header: want.clone(), len }));
            }
        }
    }

    /// (c) Random bytes never panic, never give a header longer than the input, and a verdict
    /// (a header, or an error) stands when more bytes follow.
    #[test]
    fn random_bytes_never_panic_and_verdicts_are_final(bytes in soup(), more in soup()) {
        verdict_is_final(&bytes, &more);
        if let Err(ProxyError::Malformed(message)) = parse_proxy_header(&bytes) {
            prop_assert!(!message.is_empty());
        }
    }

    /// (d) A valid header changed at random (a byte flipped, set, inserted or removed, the
    /// input cut short) parses or fails, never panics, and its verdict stands when more bytes
    /// follow.
    #[test]
    fn mutated_headers_parse_or_fail_cleanly(
        (bytes, _) in valid_header(),
        payload in prop::collection::vec(any::<u8>(), 0..16),
        mutations in prop::collection::vec(mutation(), 1..4),
        more in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut input = [&bytes[..], &payload].concat();
        for m in &mutations {
            mutate(&mut input, m);
        }
        verdict_is_final(&input, &more);
    }
}
