//! [`HeadDecoder`]: the request-head parser of `request.rs` behind kingpin's
//! [`Decoder`](kingpin::codec::Decoder) trait, so that this example frames its input the way
//! the other examples do, with one difference: the items are [`Head`]s, small `Copy` values
//! that hold what the handler answers from, so a request allocates nothing.
//!
//! A refused head is an item too (`Err(request::Error)`), not a
//! [`FrameError`](kingpin::codec::FrameError): each refusal has its own status (400, 431, 501,
//! 505) and is answered before the connection closes, where [`kingpin::Conn::decode`] would
//! close without a word.

use kingpin::codec::{Decoder, FrameError};
use kingpin::Buffer;

use super::request::{parse, Error, Parse, Request};

/// The most bytes `GET /hash/N` hashes (1 TiB: long enough to watch a busy pool).
pub const MAX_HASH: u64 = 1 << 40;

/// The path prefix of the hashing route.
const HASH_PREFIX: &[u8] = b"/hash/";

/// A request's method, as far as this server tells methods apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the response goes without its body.
    Head,
    /// Any other method.
    Other,
}

/// What a request's path names (the query is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/` (`http://host` included).
    Root,
    /// `/hash/N`: `Some(N)` for 1 to 13 decimal digits worth at most [`MAX_HASH`], `None`
    /// for anything else after the prefix.
    Hash(Option<u64>),
    /// Any other path, `*` included.
    Other,
}

/// A request head as the handler needs it, copied out of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The method.
    pub method: Method,
    /// What the path names.
    pub target: Target,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (or later 1.x).
    pub minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Length of the body that follows the head (0 without `Content-Length`).
    pub content_length: u64,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

impl Head {
    /// The parts of `req` the handler answers from.
    fn of(req: &Request<'_>) -> Head {
        let method = match req.method {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            _ => Method::Other,
        };
        let target = match req.path {
            b"/" => Target::Root,
            p if p.starts_with(HASH_PREFIX) => Target::Hash(hash_len(p)),
            _ => Target::Other,
        };
        Head {
            method,
            target,
            minor: req.minor,
            keep_alive: req.keep_alive,
            content_length: req.content_length,
            expect_continue: req.expect_continue,
        }
    }
}

/// The `N` of `/hash/N`: decimal digits only, at most [`MAX_HASH`].
fn hash_len(path: &[u8]) -> Option<u64> {
    let digits = path.strip_prefix(HASH_PREFIX)?;
    if digits.is_empty() || digits.len() > 13 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().filter(|&n| n <= MAX_HASH)
}

/// Takes request heads off the front of a connection's input, one per call: a
/// [`Decoder`] whose items are `Ok(Head)` for a head (its bytes consumed; a body that follows
/// stays in the input) or `Err(Error)` for a refused one. It never fails with a
/// [`FrameError`].
///
/// It keeps where the search for the end of a partial head resumes, so that a head arriving
/// over many reads is scanned once: one decoder per connection, kept in its state, and called
/// on its IO thread. Between a call that returned `Ok(None)` and the next, the input may only
/// grow (bytes appended at its end), as a connection's input does while nothing consumes it.
///
/// A refused head takes nothing off the input and the stream cannot be framed past it: the
/// handler answers with [`Error`]'s status and closes (a call on the same bytes would refuse
/// them again).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadDecoder {
    /// Where the search for the end of the current head resumes (0: from its start).
    resume: usize,
}

impl Decoder for HeadDecoder {
    type Item = Result<Head, Error>;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Result<Head, Error>>, FrameError> {
        match parse(src.as_slice(), self.resume) {
            Ok(Parse::Partial { resume }) => {
                self.resume = resume;
                Ok(None)
            }
            Ok(Parse::Complete { req, len }) => {
                let head = Head::of(&req);
                src.advance(len);
                self.resume = 0;
                Ok(Some(Ok(head)))
            }
            Err(e) => {
                self.resume = 0;
                Ok(Some(Err(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::MAX_HEAD;
    use super::*;

    fn buf(bytes: &[u8]) -> Buffer {
        let mut b = Buffer::new();
        b.extend_from_slice(bytes);
        b
    }

    /// What one call on `bytes` with a fresh decoder yields.
    fn decode_one(bytes: &[u8]) -> Option<Result<Head, Error>> {
        HeadDecoder::default().decode(&mut buf(bytes)).expect("never a FrameError")
    }

    fn get(target: Target) -> Head {
        Head { method: Method::Get, target, minor: 1, keep_alive: true, content_length: 0, expect_continue: false }
    }

    #[test]
    fn a_head_split_anywhere_waits_then_comes_whole_and_leaves_its_body() {
        let head = b"POST /hash/x?y HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
        let mut stream = head.to_vec();
        stream.extend_from_slice(b"abc");
        let want = Head {
            method: Method::Other,
            target: Target::Hash(None),
            minor: 0,
            keep_alive: false,
            content_length: 3,
            expect_continue: true,
        };
        for step in [1, 2, 7, 40] {
            let (mut d, mut b, mut fed) = (HeadDecoder::default(), Buffer::new(), 0);
            let got = loop {
                assert!(fed < stream.len(), "no head after all {fed} bytes, in steps of {step}");
                let take = step.min(stream.len() - fed);
                b.extend_from_slice(&stream[fed..fed + take]);
                fed += take;
                match d.decode(&mut b).expect("never a FrameError") {
                    None => {
                        assert_eq!(b.len(), fed, "nothing consumed while waiting");
                        assert!(d.resume <= fed, "resume {} past the input ({fed})", d.resume);
                    }
                    Some(item) => break item,
                }
            };
            assert_eq!(got, Ok(want), "in steps of {step}");
            assert!(fed >= head.len() && fed - head.len() == b.len(), "exactly the head consumed");
            assert_eq!(d.resume, 0, "ready for the next head");
            assert_eq!(&stream[head.len()..fed], b.as_slice());
        }
    }

    #[test]
    fn pipelined_heads_come_one_per_call() {
        let mut b = buf(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nHEAD /hash/42 HTTP/1.1\nHost: h\nConnection: close\n\nGET");
        let mut d = HeadDecoder::default();
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(get(Target::Root)))));
        let second = Head { method: Method::Head, keep_alive: false, ..get(Target::Hash(Some(42))) };
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(second))));
        assert_eq!(d.decode(&mut b), Ok(None));
        assert_eq!(b.as_slice(), b"GET", "the partial third waits");
        assert_eq!(d.resume, 3);
    }

    #[test]
    fn each_refusal_is_an_item_that_takes_nothing() {
        let mut long = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        let cases: [(&[u8], Error); 6] = [
            (b"GET / HTTP/1.1\r\n\r\n", Error::BadRequest),
            (b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", Error::BadRequest),
            (&long, Error::TooLarge),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", Error::NotImplemented),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", Error::VersionNotSupported),
            (b"GET / HTTP/3.1\r\n\r\n", Error::VersionNotSupported),
        ];
        for (bytes, error) in cases {
            let mut d = HeadDecoder::default();
            let mut b = buf(bytes);
            assert_eq!(d.decode(&mut b), Ok(Some(Err(error))), "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(b.len(), bytes.len(), "a refusal takes nothing");
            assert_eq!(d.decode(&mut b), Ok(Some(Err(error))), "and says the same again");
        }
        // A refusal after a good head in the same buffer, and after a partial call.
        let mut d = HeadDecoder::default();
        let mut b = buf(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n");
        assert_eq!(d.decode(&mut b), Ok(Some(Ok(get(Target::Root)))));
        assert_eq!(d.decode(&mut b), Ok(None));
        b.extend_from_slice(b"\r\n");
        assert_eq!(d.decode(&mut b), Ok(Some(Err(Error::BadRequest))), "no Host");
        assert_eq!(d.resume, 0);
    }

    #[test]
    fn methods_and_targets() {
        let head = |line: &str| {
            let line = format!("{line}\r\nHost: h\r\n\r\n");
            decode_one(line.as_bytes()).expect("whole").expect("accepted")
        };
        assert_eq!(head("GET / HTTP/1.1"), get(Target::Root));
        assert_eq!(head("GET /?q=1 HTTP/1.1").target, Target::Root);
        assert_eq!(head("GET http://h HTTP/1.1").target, Target::Root);
        assert_eq!(head("HEAD / HTTP/1.1").method, Method::Head);
        assert_eq!(head("get / HTTP/1.1").method, Method::Other, "methods are case-sensitive");
        assert_eq!(head("DELETE /hash/5 HTTP/1.1"), Head { method: Method::Other, ..get(Target::Hash(Some(5))) });
        assert_eq!(head("GET /hash/5?x HTTP/1.1").target, Target::Hash(Some(5)));
        assert_eq!(head("GET /hash/0000000000001 HTTP/1.1").target, Target::Hash(Some(1)));
        let max = format!("GET /hash/{MAX_HASH} HTTP/1.1");
        assert_eq!(head(&max).target, Target::Hash(Some(MAX_HASH)));
        for bad in ["/hash/", "/hash/-1", "/hash/1x", "/hash/00000000000001", "/hash/1099511627777"] {
            assert_eq!(head(&format!("GET {bad} HTTP/1.1")).target, Target::Hash(None), "{bad}");
        }
        for other in ["/hash", "/hashes/1", "/a", "*", "/hash/../"] {
            let want = if other.starts_with("/hash/") { Target::Hash(None) } else { Target::Other };
            assert_eq!(head(&format!("GET {other} HTTP/1.1")).target, want, "{other}");
        }
        assert_eq!(decode_one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap().unwrap().minor, 0);
        assert_eq!(std::mem::size_of::<Head>(), 32, "small enough to copy around");
    }
}
