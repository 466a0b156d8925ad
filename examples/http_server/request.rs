//! The request-head parser of the HTTP example: incremental, allocation-free, strict.
//!
//! # What it accepts
//!
//!
//! - A request head is the request line, header lines and an empty line, at most [`MAX_HEAD`]
//!   bytes in all (empty lines before the request line included); a longer one, or 8 KiB
//!   without the end of a head, is answered `431 Request Header Fields Too Large`.
//! - Lines end with CRLF; a bare LF is accepted as well (RFC 9112 §2.2). A CR anywhere else,
//!   a control character, or whitespace around a header name is `400 Bad Request`. Empty
//!   lines before a request line are skipped; folded header lines are rejected.
//! - Request line: `METHOD SP TARGET SP HTTP/1.d`, single spaces. The target is visible ASCII
//!   in origin form (`/path?query`), absolute form (`http://host/path`) or `*`. A well-formed
//!   version other than 1.x is `505 HTTP Version Not Supported`; anything else is `400`.
//! - HTTP/1.1 requests need exactly one `Host` header (RFC 9112 §3.2), else `400`.
//! - `Content-Length` (digits; repeated values must agree): the body is read and discarded as
//!   it arrives, over as many reads as it takes; the response follows it. With
//!   `Expect: 100-continue` an interim `100 Continue` is sent first if the body is not there.
//! - `Transfer-Encoding` in a request is `501 Not Implemented`: chunked request bodies are not
//!   supported.

/// The largest request head accepted, in bytes.
pub const MAX_HEAD: usize = 8 * 1024;

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// A parsed request head; the slices borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, case-sensitive (`GET`).
    pub method: &'a [u8],
    /// The path of the target, without query: `/` for `/?q=1` and for `http://host`.
    pub path: &'a [u8],
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (or later 1.x).
    pub minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Length of the body that follows the head (0 without `Content-Length`).
    pub content_length: u64,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

/// The outcome of [`parse`] when the input holds no error so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse<'a> {
    /// The head is not complete yet; call again with more input and this `resume` offset.
    Partial {
        /// Where the search for the end of the head goes on.
        resume: usize,
    },
    /// A complete head of `len` bytes (leading empty lines included).
    Complete {
        /// The request.
        req: Request<'a>,
        /// Bytes of input the head took.
        len: usize,
    },
}

/// Why a request head was refused; each is answered with [`Error::status`] and a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Malformed request line or header, or a missing/duplicate `Host`: 400.
    BadRequest,
    /// The head is longer than [`MAX_HEAD`]: 431.
    TooLarge,
    /// `Transfer-Encoding` in a request: 501.
    NotImplemented,
    /// A major version other than 1: 505.
    VersionNotSupported,
}

/// Parses the request head at the start of `buf`, resuming the search for its end at `resume`
/// (0 the first time, then what [`Parse::Partial`] returned, while `buf` only grew).
///
/// # Errors
/// See [`Error`]; a head of more than [`MAX_HEAD`] bytes is [`Error::TooLarge`] as soon as
/// that many bytes are there without its end.
pub fn parse(buf: &[u8], resume: usize) -> Result<Parse<'_>, Error> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let mut start = 0;
    loop {
        match &window[start..] {
            [b'\n', ..] => start += 1,
            [b'\r', b'\n', ..] => start += 2,
            [] | [b'\r'] if window.len() < MAX_HEAD => return Ok(Parse::Partial { resume: 0 }),
            [] | [b'\r'] => return Err(Error::TooLarge),
            _ => break,
        }
    }
    let (head_end, len) = match find_head_end(window, resume.max(start)) {
        Ok(found) => found,
        Err(_) if window.len() >= MAX_HEAD => return Err(Error::TooLarge),
        Err(resume) => return Ok(Parse::Partial { resume }),
    };
    let req = parse_head(&window[start..head_end])?;
    Ok(Parse::Complete { req, len })
}

/// Finds the empty line that ends a head: `Ok((end of the last header line, end of the
/// head))`, or `Err(offset to resume from)`.
fn find_head_end(buf: &[u8], from: usize) -> Result<(usize, usize), usize> {
    let mut i = from;
    while let Some(p) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + p;
        match buf.get(nl + 1..).unwrap_or_default() {
            [b'\n', ..] => return Ok((nl + 1, nl + 2)),
            [b'\r', b'\n', ..] => return Ok((nl + 1, nl + 3)),
            [] | [b'\r'] => return Err(nl),
            _ => i = nl + 1,
        }
    }
    Err(buf.len())
}

/// Parses the request line and header lines of `head` (each line ends with `\n`).
fn parse_head(head: &[u8]) -> Result<Request<'_>, Error> {
    let mut lines = head.split_inclusive(|&b| b == b'\n').map(|l| {
        let l = &l[..l.len() - 1];
        l.strip_suffix(b"\r").unwrap_or(l)
    });
    let (method, target, minor) = parse_request_line(lines.next().unwrap_or_default())?;
    let path = path_of(target).ok_or(Error::BadRequest)?;
    let (mut close, mut keep_alive, mut expect_continue, mut te) = (false, false, false, false);
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    for line in lines {
        let colon = memchr::memchr(b':', line).ok_or(Error::BadRequest)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(Error::BadRequest);
        }
        let value = trim_ows(&line[colon + 1..]);
        if !value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            return Err(Error::BadRequest);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(Error::BadRequest)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(Error::BadRequest);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim_ows) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if hosts > 1 || (minor >= 1 && hosts == 0) {
        return Err(Error::BadRequest);
    }
    if te {
        return Err(Error::NotImplemented);
    }
    Ok(Request {
        method,
        path,
        minor,
        keep_alive: !close && (minor >= 1 || keep_alive),
        content_length: content_length.unwrap_or(0),
        expect_continue,
    })
}

/// `METHOD SP TARGET SP HTTP/1.d` → (method, target, minor version).
fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], u8), Error> {
    let sp = memchr::memchr(b' ', line).ok_or(Error::BadRequest)?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = memchr::memchr(b' ', rest).ok_or(Error::BadRequest)?;
    let (target, version) = (&rest[..sp], &rest[sp + 1..]);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Error::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::BadRequest);
    }
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ b'0'..=b'9'] => Ok((method, target, minor - b'0')),
        [b'H', b'T', b'T', b'P', b'/', b'0'..=b'9', b'.', b'0'..=b'9'] => Err(Error::VersionNotSupported),
        _ => Err(Error::BadRequest),
    }
}

/// The path of a request target (without query), or `None` if the target is of no form this
/// server serves.
fn path_of(target: &[u8]) -> Option<&[u8]> {
    let without_query = |s: &'_ [u8]| -> usize { memchr::memchr(b'?', s).unwrap_or(s.len()) };
    if target.first() == Some(&b'/') {
        return Some(&target[..without_query(target)]);
    }
    if target == b"*" {
        return Some(target);
    }
    let colon = memchr::memchr(b':', target)?;
    let (scheme, rest) = (&target[..colon], &target[colon..]);
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let authority_and_path = rest.strip_prefix(b"://")?;
    match authority_and_path.iter().position(|&b| b == b'/' || b == b'?') {
        Some(i) if authority_and_path[i] == b'/' => {
            let path = &authority_and_path[i..];
            Some(&path[..without_query(path)])
        }
        _ => Some(b"/"),
    }
}

/// RFC 9110 `tchar`: the bytes of a method or header name.
fn is_tchar(b: u8) -> bool {
    matches!(b, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
        || b.is_ascii_alphanumeric()
}

/// Strips spaces and tabs at both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A non-empty run of ASCII digits as a `u64`; `None` on anything else or overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(
        0u64,
        |n, &b| if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None },
    )
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------
#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse(buf, 0) {
            Ok(Parse::Complete { req, len }) => (req, len),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn error(buf: &[u8]) -> Error {
        match parse(buf, 0) {
            Err(e) => e,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn simple_get() {
        let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nnext";
        let (req, len) = complete(buf);
        assert_eq!(len, buf.len() - 4);
        assert_eq!(req.method, b"GET");
        assert_eq!(req.path, b"/");
        assert_eq!(req.minor, 1);
        assert!(req.keep_alive);
        assert_eq!(req.content_length, 0);
        assert!(!req.expect_continue);
    }

    #[test]
    fn partial_heads_resume() {
        let full = b"GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";
        let mut resume = 0;
        for end in 0..full.len() {
            match parse(&full[..end], resume) {
                Ok(Parse::Partial { resume: r }) => {
                    assert!(r <= end, "resume {r} past the input ({end})");
                    resume = r;
                }
                other => panic!("prefix of {end} bytes: {other:?}"),
            }
        }
        assert_eq!(parse(full, resume), Ok(Parse::Complete { req: complete(full).0, len: full.len() }));
        assert_eq!(complete(full).0.path, b"/a");
    }

    #[test]
    fn bare_lf_and_leading_empty_lines() {
        let (req, len) = complete(b"\r\n\nGET / HTTP/1.1\nHost: x\n\nrest");
        assert_eq!((req.method, req.path, len), (&b"GET"[..], &b"/"[..], 27));
        let (_, len) = complete(b"GET / HTTP/1.0\n\r\n");
        assert_eq!(len, 17);
        assert_eq!(parse(b"\r\n\r", 0), Ok(Parse::Partial { resume: 0 }));
        assert_eq!(parse(b"GET / HTTP/1.0\n\r", 0), Ok(Parse::Partial { resume: 14 }));
    }

    #[test]
    fn connection_semantics() {
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0.keep_alive);
        assert!(!complete(b"GET / HTTP/1.1\r\nHost: x\r\nconnection: Upgrade, CLOSE \r\n\r\n").0.keep_alive);
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keep_alive);
        assert!(complete(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n").0.keep_alive);
        let (req, _) = complete(b"GET / HTTP/1.9\r\nHost: x\r\n\r\n");
        assert_eq!(req.minor, 9);
        assert!(req.keep_alive);
    }

    #[test]
    fn content_length_and_expect() {
        let (req, _) = complete(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  42 \r\nExpect: 100-Continue\r\n\r\n");
        assert_eq!(req.content_length, 42);
        assert!(req.expect_continue);
        let (req, _) = complete(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n");
        assert_eq!(req.content_length, 7);
        for bad in [&b"-1"[..], b"", b"1 2", b"0x10", b"99999999999999999999", b"5, 5", b"+5"] {
            let mut head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ".to_vec();
            head.extend_from_slice(bad);
            head.extend_from_slice(b"\r\n\r\n");
            assert_eq!(error(&head), Error::BadRequest, "Content-Length: {:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"),
            Error::BadRequest
        );
        let te = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(error(te), Error::NotImplemented);
    }

    #[test]
    fn targets() {
        let path = |t: &str| {
            let head = format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n");
            parse(head.as_bytes(), 0).map(|p| match p {
                Parse::Complete { req, .. } => String::from_utf8(req.path.to_vec()).unwrap(),
                Parse::Partial { .. } => panic!("partial"),
            })
        };
        assert_eq!(path("/").unwrap(), "/");
        assert_eq!(path("/?x=1").unwrap(), "/");
        assert_eq!(path("/a/b?c").unwrap(), "/a/b");
        assert_eq!(path("http://example.com").unwrap(), "/");
        assert_eq!(path("HTTP://example.com:80/").unwrap(), "/");
        assert_eq!(path("https://example.com?q").unwrap(), "/");
        assert_eq!(path("http://example.com/x?y").unwrap(), "/x");
        assert_eq!(path("*").unwrap(), "*");
        assert_eq!(path("example.com:443"), Err(Error::BadRequest));
        assert_eq!(path("ftp://example.com/"), Err(Error::BadRequest));
        assert_eq!(path("a"), Err(Error::BadRequest));
    }

    #[test]
    fn malformed_heads() {
        let bad: &[&[u8]] = &[
            b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
            b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
            b"GET /\r\nHost: x\r\n\r\n",
            b"GET / http/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.10\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1\r\nHost: x\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\rInjected: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f\r\n\r\n",
            b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"hello\r\n\r\n",
        ];
        for head in bad {
            assert_eq!(error(head), Error::BadRequest, "{:?}", String::from_utf8_lossy(head));
        }
        assert_eq!(error(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), Error::VersionNotSupported);
        assert_eq!(error(b"GET / HTTP/0.9\r\n\r\n"), Error::VersionNotSupported);
        // Tabs, obs-text and empty values are fine.
        complete(b"GET / HTTP/1.1\r\nHost: x\r\nA: \tb\xe9 c\t\r\nEmpty:\r\n\r\n");
    }

    #[test]
    fn head_size_limit() {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        let fill = MAX_HEAD - head.len() - 4;
        head.extend(std::iter::repeat(b'a').take(fill));
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), MAX_HEAD);
        assert_eq!(complete(&head).1, MAX_HEAD, "exactly the limit is fine");
        head.insert(30, b'a');
        assert_eq!(error(&head), Error::TooLarge, "one byte more is not");
        assert_eq!(error(&head[..MAX_HEAD]), Error::TooLarge, "no need to wait for the end");
        assert_eq!(parse(&head[..MAX_HEAD - 1], 0), Ok(Parse::Partial { resume: MAX_HEAD - 2 }));
        assert_eq!(error(&b"\r\n".repeat(MAX_HEAD / 2)), Error::TooLarge, "empty lines count");
    }
}
