//! Short, bounded property runs (a few hundred cases each) over the parsers bytes from the
//! network reach: the `http_server` example's request parser and handler, the crawler's
//! response parser (through `crawl`, its public face), and `Buffer::read_from` under random
//! chunkings through a socket pair. Each property names what it proves.

mod util;

#[path = "../examples/http_server/head.rs"]
#[allow(dead_code)]
mod head;
#[path = "../examples/http_server/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../examples/http_server/request.rs"]
#[allow(dead_code)]
mod request;

#[path = "../examples/crawler/crawl.rs"]
#[allow(dead_code)]
mod crawl;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use kingpin::{Buffer, EpollTPServer, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use request::{Parse, Request};
use util::{connect, IO_TIMEOUT};

/// Cases of each property over sockets (the pure ones run 512).
const SOCKET_CASES: u32 = 128;

fn socket_runner() -> TestRunner {
    TestRunner::new(Config { cases: SOCKET_CASES, failure_persistence: None, ..Config::default() })
}

/// Cuts `data` at `cuts` (any positions, sorted and clamped here) into consecutive pieces.
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|&c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    at.push(data.len());
    let mut prev = 0;
    let mut out = Vec::new();
    for p in at {
        if p > prev {
            out.push(&data[prev..p]);
            prev = p;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP request parser
// ---------------------------------------------------------------------------------------------

/// Byte soup that often looks like HTTP: tokens of request heads, separators, controls,
/// random bytes, and now and then a run long enough to pass the head limit.
fn http_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => prop::sample::select(vec![
            "GET ", "HEAD ", "POST ", "/ ", "/a?b ", "http://h/p ", "* ", " ", "HTTP/1.1", "HTTP/1.0",
            "HTTP/2.0", "HTTP/1.", "\r\n", "\n", "\r", "\r\n\r\n", "\n\n", ":", "Host: x", "Host:",
            "Content-Length: ", "Content-Length: 5", "0", "18446744073709551616", "Transfer-Encoding: chunked",
            "Connection: close", "Connection: keep-alive", "Expect: 100-continue", "\t", "\0", "\x7f", " x",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 1..8),
        1 => (1usize..3000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// A parse outcome with the `Partial` resume offset left out (it may differ between a fresh
/// and a resumed parse) and the request copied out of the input.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Partial,
    Complete(String, usize),
    Error(request::Error),
}

fn outcome(r: Result<Parse<'_>, request::Error>) -> Outcome {
    match r {
        Ok(Parse::Partial { .. }) => Outcome::Partial,
        Ok(Parse::Complete { req, len }) => Outcome::Complete(format!("{req:?}"), len),
        Err(e) => Outcome::Error(e),
    }
}

/// Feeds `data` to the parser in `pieces`, resuming as the handler does; returns the outcome
/// after each piece, checking each against a fresh parse of the same prefix.
fn parse_in_pieces(data: &[u8], cuts: &[usize]) -> Result<Vec<Outcome>, TestCaseError> {
    let mut resume = 0;
    let mut len = 0;
    let mut seen = Vec::new();
    for piece in pieces(data, cuts) {
        len += piece.len();
        let prefix = &data[..len];
        let resumed = request::parse(prefix, resume);
        if let Ok(Parse::Partial { resume: r }) = resumed {
            prop_assert!(r <= len, "resume offset {} past the input ({})", r, len);
            resume = r;
        }
        let (resumed, fresh) = (outcome(resumed), outcome(request::parse(prefix, 0)));
        prop_assert_eq!(&resumed, &fresh, "resumed and fresh parse differ at {} bytes", len);
        seen.push(resumed);
        if seen.last() != Some(&Outcome::Partial) {
            break;
        }
    }
    Ok(seen)
}

/// What a generated request head should parse to.
#[derive(Debug, Clone)]
struct Expected {
    method: String,
    path: String,
    minor: u8,
    keep_alive: bool,
    content_length: u64,
    expect_continue: bool,
}

impl Expected {
    fn matches(&self, req: &Request<'_>) -> bool {
        req.method == self.method.as_bytes()
            && req.path == self.path.as_bytes()
            && req.minor == self.minor
            && req.keep_alive == self.keep_alive
            && req.content_length == self.content_length
            && req.expect_continue == self.expect_continue
    }
}

/// Header names the parser gives a meaning to, which random extra headers must avoid.
const SPECIAL: [&str; 5] = ["host", "content-length", "connection", "transfer-encoding", "expect"];

/// A request target and the path the parser should take from it.
fn target() -> impl Strategy<Value = (String, String)> {
    let path = "/[!->@-~]{0,16}"; // visible ASCII without '?'
    let query = prop::option::of("\\?[!-~]{0,10}");
    prop_oneof![
        4 => (path, query.clone()).prop_map(|(p, q)| (format!("{p}{}", q.unwrap_or_default()), p)),
        1 => Just(("*".to_string(), "*".to_string())),
        2 => (
            prop::sample::select(vec!["http", "HTTP", "https"]),
            "[a-z0-9.:]{1,12}",
            prop::option::of(path),
            query,
        )
            .prop_map(|(scheme, host, p, q)| {
                let q = q.unwrap_or_default();
                match p {
                    Some(p) => (format!("{scheme}://{host}{p}{q}"), p),
                    None => (format!("{scheme}://{host}{q}"), "/".to_string()),
                }
            }),
    ]
}

/// A valid request head (leading empty lines, any mix of CRLF and LF, optional whitespace
/// around values, meaningful and random headers in random order) and what it means.
fn valid_head() -> impl Strategy<Value = (Vec<u8>, Expected)> {
    let method = prop_oneof![
        3 => prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE"]).prop_map(String::from),
        1 => "[-A-Za-z0-9!#$%&'*+.^_`|~]{1,8}",
    ];
    let connection = prop::collection::vec(
        (prop::sample::select(vec!["close", "Close", "keep-alive", "Keep-Alive", "upgrade", "te"]), "[ \t]{0,2}"),
        1..4,
    );
    let extra = (
        "[-A-Za-z0-9!#$%&'*+.^_`|~]{1,12}"
            .prop_filter("special name", |n| !SPECIAL.iter().any(|s| n.eq_ignore_ascii_case(s))),
        prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..24),
    );
    (
        (method, target(), 0u8..10, any::<bool>(), prop::option::of((0u64..1 << 40, 0usize..3, any::<bool>()))),
        (prop::option::of(connection), prop::option::of(any::<bool>()), prop::collection::vec(extra, 0..5)),
        (prop::collection::vec(any::<bool>(), 32), prop::collection::vec("[ \t]{0,2}", 32), 0usize..3, any::<u64>()),
    )
        .prop_map(
            |((method, (target, path), minor, host10, cl), (conn, expect, extras), (crlf, ows, blank, shuffle))| {
                let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
                if minor >= 1 || host10 {
                    headers.push((["Host", "host", "HOST"][shuffle as usize % 3].into(), b"example.com".to_vec()));
                }
                if let Some((n, zeros, twice)) = cl {
                    let v = format!("{}{n}", "0".repeat(zeros));
                    headers.push(("Content-Length".into(), v.clone().into_bytes()));
                    if twice {
                        headers.push(("content-length".into(), v.into_bytes()));
                    }
                }
                let (mut close, mut ka) = (false, false);
                if let Some(tokens) = &conn {
                    close = tokens.iter().any(|(t, _)| t.eq_ignore_ascii_case("close"));
                    ka = tokens.iter().any(|(t, _)| t.eq_ignore_ascii_case("keep-alive"));
                    let v: Vec<String> = tokens.iter().map(|(t, w)| format!("{w}{t}{w}")).collect();
                    headers.push(("Connection".into(), v.join(",").into_bytes()));
                }
                if let Some(c) = expect {
                    headers.push(("Expect".into(), if c { b"100-Continue".to_vec() } else { b"nothing".to_vec() }));
                }
                headers.extend(extras);
                // A deterministic shuffle of the header order.
                let mut x = shuffle | 1;
                for i in (1..headers.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    headers.swap(i, (x % (i as u64 + 1)) as usize);
                }
                let eol = |i: usize| -> &'static [u8] {
                    if crlf[i % crlf.len()] {
                        b"\r\n"
                    } else {
                        b"\n"
                    }
                };
                let mut head = Vec::new();
                for i in 0..blank {
                    head.extend_from_slice(eol(i + 7));
                }
                head.extend_from_slice(format!("{method} {target} HTTP/1.{minor}").as_bytes());
                head.extend_from_slice(eol(0));
                for (i, (name, value)) in headers.iter().enumerate() {
                    head.extend_from_slice(name.as_bytes());
                    head.push(b':');
                    head.extend_from_slice(ows[i % ows.len()].as_bytes());
                    head.extend_from_slice(value);
                    head.extend_from_slice(ows[(i + 1) % ows.len()].as_bytes());
                    head.extend_from_slice(eol(i + 1));
                }
                head.extend_from_slice(eol(31));
                let expected = Expected {
                    method,
                    path,
                    minor,
                    keep_alive: !close && (minor >= 1 || ka),
                    content_length: cl.map_or(0, |(n, _, _)| n),
                    expect_continue: expect == Some(true),
                };
                (head, expected)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The request parser never panics on any bytes, fed whole or in pieces; resuming from
    /// the offset it returned gives what a fresh parse of the same bytes gives; and once it
    /// has decided (a request or an error), more bytes do not change its mind.
    #[test]
    fn http_parser_survives_any_bytes_in_any_pieces(
        data in http_soup(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let seen = parse_in_pieces(&data, &cuts)?;
        let whole = outcome(request::parse(&data, 0));
        match seen.last() {
            Some(Outcome::Partial) | None => prop_assert_eq!(whole, Outcome::Partial),
            Some(decided) => prop_assert_eq!(&whole, decided),
        }
    }

    /// A valid request head split at any points parses, once complete, to exactly the
    /// request it encodes, with its length (body bytes after it untouched); every prefix
    /// before that is `Partial`, never an error.
    #[test]
    fn http_valid_request_split_anywhere_parses_the_same(
        (head, expected) in valid_head(),
        body in prop::collection::vec(any::<u8>(), 0..16),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        prop_assume!(head.len() <= request::MAX_HEAD);
        let mut data = head.clone();
        data.extend_from_slice(&body);
        let seen = parse_in_pieces(&data, &cuts)?;
        let (last, before) = seen.split_last().expect("at least one piece");
        prop_assert!(before.iter().all(|o| *o == Outcome::Partial), "{:?}", seen);
        match request::parse(&data, 0) {
            Ok(Parse::Complete { req, len }) => {
                prop_assert!(expected.matches(&req), "parsed {:?}, expected {:?}", req, expected);
                prop_assert_eq!(len, head.len());
                prop_assert_eq!(last, &outcome(Ok(Parse::Complete { req, len })));
            }
            other => prop_assert!(false, "{:?} for {:?}", other, String::from_utf8_lossy(&head)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP handler over a socket
// ---------------------------------------------------------------------------------------------

/// One item of a request stream: a valid request with its body, or junk.
fn stream_item() -> impl Strategy<Value = Vec<u8>> {
    let request = (
        prop::sample::select(vec!["GET", "HEAD", "POST", "DELETE"]),
        prop::sample::select(vec!["/", "/?q=1", "/missing", "http://h/", "*"]),
        0u8..2,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        prop::sample::select(vec![
            "",
            "Connection: close\r\n",
            "Connection: keep-alive\r\n",
            "Expect: 100-continue\r\n",
        ]),
    )
        .prop_map(|(method, target, minor, body, extra)| {
            let mut r = format!("{method} {target} HTTP/1.{minor}\r\nHost: h\r\n{extra}").into_bytes();
            if let Some(body) = body {
                r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                r.extend_from_slice(&body);
            } else {
                r.extend_from_slice(b"\r\n");
            }
            r
        });
    prop_oneof![6 => request, 1 => http_soup().prop_map(|mut s| { s.truncate(300); s })]
}

/// The responses (status, whether head-only) the handler owes for `stream`, derived from the
/// parser alone: each complete request whose body is all there is answered, up to and
/// including the first error or `Connection: close`.
fn expected_responses(stream: &[u8]) -> Vec<(u16, bool)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        match request::parse(&stream[pos..], 0) {
            Ok(Parse::Partial { .. }) => break,
            Ok(Parse::Complete { req, len }) => {
                let status = match (req.path, req.method) {
                    (b"/", b"GET" | b"HEAD") => 200,
                    (b"/", _) => 405,
                    _ => 404,
                };
                pos += len;
                if ((stream.len() - pos) as u64) < req.content_length {
                    break;
                }
                pos += req.content_length as usize;
                out.push((status, req.method == b"HEAD"));
                if !req.keep_alive {
                    break;
                }
            }
            Err(e) => {
                let status = match e {
                    request::Error::BadRequest => 400,
                    request::Error::TooLarge => 431,
                    request::Error::NotImplemented => 501,
                    request::Error::VersionNotSupported => 505,
                };
                out.push((status, false));
                break;
            }
        }
    }
    out
}

/// Splits a response stream into (status, body length) pairs, given which are head-only;
/// interim `100 Continue` responses are dropped.
fn split_responses(mut bytes: &[u8], head_only: &[bool]) -> Result<Vec<u16>, String> {
    let mut statuses = Vec::new();
    let mut i = 0;
    loop {
        while let Some(rest) = bytes.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n".as_slice()) {
            bytes = rest;
        }
        if bytes.is_empty() {
            return Ok(statuses);
        }
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").ok_or("unterminated response head")?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "non-UTF-8 head")?;
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or(format!("bad status line {head:?}"))?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .ok_or(format!("no Content-Length in {head:?}"))?;
        let body = if head_only.get(i).copied().unwrap_or(false) { 0 } else { length };
        bytes = bytes.get(end + 4 + body..).ok_or("truncated body")?;
        statuses.push(status);
        i += 1;
    }
}

/// Streams of valid requests, junk and bodies, sent in random pieces to the `http_server`
/// handler on a real socket, get exactly the responses the parser says they should, in
/// order — and no callback ever panics.
#[test]
fn http_handler_answers_any_stream_as_the_parser_says() {
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(2), http::HttpHandler::default).start().unwrap();
    let addr = server.local_addr();
    let strategy = (prop::collection::vec(stream_item(), 1..5), prop::collection::vec(any::<usize>(), 0..4));
    socket_runner()
        .run(&strategy, |(items, cuts)| {
            let stream = items.concat();
            let expected = expected_responses(&stream);
            let mut s = connect(addr);
            for piece in pieces(&stream, &cuts) {
                // The server may already have answered an error and stopped listening.
                if s.write_all(piece).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = s.shutdown(NetShutdown::Write);
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).map_err(|e| TestCaseError::fail(format!("reading the replies: {e}")))?;
            let head_only: Vec<bool> = expected.iter().map(|&(_, h)| h).collect();
            let got = split_responses(&reply, &head_only).map_err(TestCaseError::fail)?;
            let want: Vec<u16> = expected.iter().map(|&(s, _)| s).collect();
            prop_assert_eq!(got, want, "stream {:?}", String::from_utf8_lossy(&stream));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.stats().panics, 0);
}

// ---------------------------------------------------------------------------------------------
// Crawler response parser (through `crawl`)
// ---------------------------------------------------------------------------------------------

/// Serves one connection on a fresh port: reads the request head, writes `pieces` with a
/// pause between them, then closes. Returns the URL to crawl.
fn serve_once(response: Vec<u8>, cuts: Vec<usize>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/page", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut request = Vec::new();
        let mut b = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&b[..n]),
            }
        }
        for piece in pieces(&response, &cuts) {
            if s.write_all(piece).is_err() {
                return; // the crawler gave up on a malformed response: fine
            }
            std::thread::sleep(Duration::from_micros(300));
        }
    });
    (url, server)
}

fn crawl_one(response: Vec<u8>, cuts: Vec<usize>) -> Result<crawl::Fetched, String> {
    let (url, server) = serve_once(response, cuts);
    let reports = crawl::crawl(&[url], 1, Duration::from_secs(10), false).expect("crawl");
    server.join().expect("server thread");
    assert_eq!(reports.len(), 1);
    reports.into_iter().next().unwrap().outcome
}

/// How a generated response frames its body.
#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Chunk sizes (the last chunk takes the rest), hex in upper case, with extensions, with
    /// trailers.
    Chunked(Vec<usize>, bool, bool, bool),
    UntilClose,
}

/// A valid response and its expected status line, status and body length.
fn valid_response() -> impl Strategy<Value = (Vec<u8>, String, u16, usize)> {
    let framing = prop_oneof![
        Just(Framing::Length),
        (prop::collection::vec(1usize..300, 0..6), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(sizes, upper, ext, trailers)| Framing::Chunked(sizes, upper, ext, trailers)),
        Just(Framing::UntilClose),
    ];
    let extra = prop::collection::vec(
        ("[A-Za-z][-A-Za-z]{0,10}", "[ -~]{0,20}").prop_filter("framing header", |(n, _)| {
            !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding")
        }),
        0..4,
    );
    (
        prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0"]),
        100u16..600,
        "[A-Za-z ]{0,12}",
        framing,
        extra,
        prop::collection::vec(any::<u8>(), 0..1500),
    )
        .prop_map(|(version, status, reason, framing, extra, body)| {
            let status_line = format!("{version} {status} {reason}");
            let mut r = format!("{status_line}\r\n").into_bytes();
            for (n, v) in &extra {
                r.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            match &framing {
                Framing::Length => {
                    r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    r.extend_from_slice(&body);
                }
                Framing::UntilClose => {
                    r.extend_from_slice(b"\r\n");
                    r.extend_from_slice(&body);
                }
                Framing::Chunked(sizes, upper, ext, trailers) => {
                    r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = &body[..];
                    let mut sizes = sizes.iter();
                    while !rest.is_empty() {
                        let n = sizes.next().map_or(rest.len(), |&n| n.min(rest.len()));
                        let size = if *upper { format!("{n:X}") } else { format!("{n:x}") };
                        let ext = if *ext { ";name=value" } else { "" };
                        r.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                        r.extend_from_slice(&rest[..n]);
                        r.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    r.extend_from_slice(b"0\r\n");
                    if *trailers {
                        r.extend_from_slice(b"Trailer-Field: x\r\n");
                    }
                    r.extend_from_slice(b"\r\n");
                }
            }
            (r, status_line, status, body.len())
        })
}

/// A valid response — body framed by length, chunks (any sizes, extensions, trailers) or the
/// close — delivered in any pieces is reported by the crawler with its status line and exact
/// body length.
#[test]
fn crawler_reports_valid_responses_in_any_pieces() {
    let strategy = (valid_response(), prop::collection::vec(any::<usize>(), 0..5));
    socket_runner()
        .run(&strategy, |((response, status_line, status, body_len), cuts)| {
            let fetched = crawl_one(response.clone(), cuts)
                .map_err(|e| TestCaseError::fail(format!("{e} for {:?}", String::from_utf8_lossy(&response))))?;
            prop_assert_eq!(fetched.status_line, status_line);
            prop_assert_eq!(fetched.status, status);
            prop_assert_eq!(fetched.body_len, body_len);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Anything a server may send — junk, truncated or malformed heads, bad chunk sizes — ends in
/// a report for the URL (a fetch or an error), never a panic in the crawler's handler.
#[test]
fn crawler_survives_any_response_bytes() {
    let soup = prop_oneof![
        3 => prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "HTTP/1.1 200 OK\r\n", "HTTP/1.0 ", "200", " OK", "\r\n", "\r\n\r\n", "Content-Length: ",
                    "Content-Length: 99999999999999999999", "Transfer-Encoding: chunked\r\n", "5\r\n", "ffffffffffffffffff\r\n",
                    "0\r\n\r\n", ";", ":", "\n", "\r", "x",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 1..10),
            ],
            0..30,
        )
        .prop_map(|t| t.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..500),
    ];
    socket_runner()
        .run(&(soup, prop::collection::vec(any::<usize>(), 0..4)), |(response, cuts)| {
            if let Err(e) = crawl_one(response, cuts) {
                prop_assert!(!e.contains("panicked"), "crawler handler panicked: {}", e);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// Buffer::read_from through a socket pair
// ---------------------------------------------------------------------------------------------

/// What the reader does next.
#[derive(Debug, Clone)]
enum ReadOp {
    /// The peer writes this many bytes; the buffer reads them all, call by call.
    Write(usize),
    /// The consumer takes this many readable bytes (at most what there is).
    Consume(usize),
    /// The buffer is shrunk to this capacity (when its bytes fit).
    Shrink(usize),
}

/// `Buffer::read_from` with any starting capacity, any write sizes (up to past its 64 KiB
/// stack spill area), and consumption and shrinking in between, holds exactly the bytes
/// written minus those consumed, in order, with its regions adding up after every call.
#[test]
fn buffer_read_from_matches_a_vec_under_random_chunkings() {
    let op = prop_oneof![
        4 => prop_oneof![1usize..600, 600usize..100_000].prop_map(ReadOp::Write),
        3 => (0usize..120_000).prop_map(ReadOp::Consume),
        1 => (0usize..4096).prop_map(ReadOp::Shrink),
    ];
    let mut runner = TestRunner::new(Config { cases: 256, failure_persistence: None, ..Config::default() });
    runner
        .run(&(0usize..5000, prop::collection::vec(op, 1..30)), |(capacity, ops)| {
            let (mut writer, reader) = UnixStream::pair().unwrap();
            reader.set_nonblocking(true).unwrap();
            let mut buf = Buffer::with_capacity(capacity);
            let mut model: Vec<u8> = Vec::new();
            let mut written = 0u64;
            for op in ops {
                match op {
                    ReadOp::Write(n) => {
                        let mut data = vec![0u8; n];
                        for (i, b) in data.iter_mut().enumerate() {
                            *b = ((written + i as u64) * 131 % 251) as u8;
                        }
                        writer.write_all(&data).unwrap();
                        written += n as u64;
                        model.extend_from_slice(&data);
                        let mut got = 0;
                        while got < n {
                            match buf.read_from(reader.as_fd()) {
                                Ok(0) => return Err(TestCaseError::fail("end of stream too early")),
                                Ok(k) => got += k,
                                Err(e) => return Err(TestCaseError::fail(format!("read_from: {e}"))),
                            }
                            prop_assert_eq!(
                                buf.prependable_len() + buf.len() + buf.writable_len(),
                                buf.capacity() + Buffer::PREPEND
                            );
                        }
                        prop_assert_eq!(got, n, "read more than was written");
                    }
                    ReadOp::Consume(n) => {
                        let n = n.min(buf.len());
                        buf.advance(n);
                        model.drain(..n);
                    }
                    ReadOp::Shrink(c) => buf.shrink_to(c),
                }
                prop_assert!(buf.as_slice() == &model[..], "buffer differs from the model");
            }
            drop(writer);
            prop_assert_eq!(buf.read_from(reader.as_fd()).unwrap(), 0, "end of stream");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
