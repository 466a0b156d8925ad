//! The crawler's engine: fetch many `http://` URLs concurrently with an `EpollTPClient` and
//! report, for each, its status line, body size and time — or the error that stopped it.
//!
//! Shared by `main.rs` and by the integration test (`tests/crawler.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, IoHandler, Parts, Target};
use parking_lot::Mutex;

/// A URL split into what the crawler needs. Only `http://` is supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses `http://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => return Err(format!("unsupported scheme {scheme:?} (only http)")),
        None => return Err("missing scheme (expected http://)".into()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok(Url { host: host.into(), port, path: path.into() })
}

/// What fetching one URL gave.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status_line: String,
    pub status: u16,
    pub body_len: usize,
    pub elapsed: Duration,
}

/// The result for one URL, in the order the URLs were given.
#[derive(Clone, Debug)]
pub struct Report {
    pub url: String,
    pub outcome: Result<Fetched, String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(r) => write!(
                f,
                "{:<28} {:>9} B {:>9.2} ms  {}",
                r.status_line,
                r.body_len,
                r.elapsed.as_secs_f64() * 1e3,
                self.url
            ),
            Err(e) => write!(f, "{:<28} {:>11} {:>12}  {}  ({e})", "ERROR", "-", "-", self.url),
        }
    }
}

/// Shared by the IO threads: where each URL stands.
struct Job {
    urls: Vec<String>,
    started: Instant,
    results: Mutex<Vec<Option<Result<Fetched, String>>>>,
    live: bool,
}

impl Job {
    fn finish(&self, index: usize, outcome: Result<Fetched, String>) {
        let mut results = self.results.lock();
        if results[index].is_none() {
            let report = Report { url: self.urls[index].clone(), outcome: outcome.clone() };
            if self.live {
                println!("{report}");
            }
            results[index] = Some(outcome);
        }
    }
}

/// The HTTP/1.1 response parser of one connection.
#[derive(Default)]
struct Response {
    head: Option<Head>,
    body_len: usize,
    chunk_left: usize,
    done: bool,
}

struct Head {
    status_line: String,
    status: u16,
    framing: Framing,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses what it can of `buf`; consumes what it parsed. `Err` for a malformed response.
fn parse(resp: &mut Response, buf: &mut kingpin::Buffer) -> Result<(), String> {
    if resp.head.is_none() {
        let Some(end) = buf.find(b"\r\n\r\n") else {
            return if buf.len() > 64 * 1024 { Err("response head over 64 KiB".into()) } else { Ok(()) };
        };
        let head = std::str::from_utf8(&buf.as_slice()[..end]).map_err(|_| "response head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !version.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP/1.x response: {status_line:?}"));
        }
        let status = code.parse::<u16>().map_err(|_| format!("bad status line {status_line:?}"))?;
        let mut framing = Framing::UntilClose;
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
                framing = Framing::Length(value.parse().map_err(|_| format!("bad Content-Length {value:?}"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            }
        }
        buf.advance(end + 4);
        resp.head = Some(Head { status_line, status, framing });
    }
    let framing = resp.head.as_ref().map(|h| h.framing).expect("parsed");
    match framing {
        Framing::Length(n) => {
            let take = buf.len().min(n - resp.body_len);
            resp.body_len += take;
            buf.advance(take);
            resp.done = resp.body_len == n;
        }
        Framing::UntilClose => {
            resp.body_len += buf.len();
            buf.clear();
        }
        Framing::Chunked => loop {
            if resp.chunk_left > 0 {
                let take = buf.len().min(resp.chunk_left);
                resp.body_len += take;
                resp.chunk_left -= take;
                buf.advance(take);
                if resp.chunk_left > 0 {
                    break;
                }
                // Each chunk ends with CRLF.
                if buf.len() < 2 {
                    resp.chunk_left = 0;
                    break;
                }
            }
            if buf.as_slice().starts_with(b"\r\n") {
                buf.advance(2);
            }
            let Some(eol) = buf.find_crlf() else { break };
            let line = std::str::from_utf8(&buf.as_slice()[..eol]).map_err(|_| "bad chunk size line")?;
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {size_hex:?}"))?;
            buf.advance(eol + 2);
            if size == 0 {
                resp.done = true;
                break;
            }
            resp.chunk_left = size;
        },
    }
    Ok(())
}

/// The client handler: one per IO thread.
struct Crawler {
    job: Arc<Job>,
}

impl Crawler {
    /// Takes the connection's response and judges it.
    fn outcome(&self, conn: &mut Conn<'_, Option<Response>>) -> (usize, Result<Fetched, String>) {
        let index = conn.target().map_or(0, |t| t.get_tag() as usize);
        let elapsed = self.job.started.elapsed();
        let outcome = match conn.state_mut().take() {
            Some(Response { head: Some(h), body_len, done, .. }) if done || h.framing == Framing::UntilClose => {
                Ok(Fetched { status_line: h.status_line, status: h.status, body_len, elapsed })
            }
            Some(Response { head: Some(_), body_len, .. }) => {
                Err(format!("connection closed after {body_len} body bytes, before the end of the body"))
            }
            _ => Err("connection closed before a response".into()),
        };
        (index, outcome)
    }
}

impl IoHandler for Crawler {
    /// The response being read; `None` once it has been reported.
    type ConnState = Option<Response>;

    fn on_connect(&mut self, conn: &mut Conn<'_, Option<Response>>) {
        *conn.state_mut() = Some(Response::default());
    }

    fn on_message(&mut self, conn: &mut Conn<'_, Option<Response>>) {
        let Parts { input, state, .. } = conn.parts();
        let Some(resp) = state else { return input.clear() };
        let result = parse(resp, input);
        let done = resp.done;
        match result {
            Err(e) => {
                let index = conn.target().map_or(0, |t| t.get_tag() as usize);
                self.job.finish(index, Err(e));
                conn.force_close();
            }
            Ok(()) if done => {
                let (index, outcome) = self.outcome(conn);
                self.job.finish(index, outcome);
                conn.close();
            }
            Ok(()) => {}
        }
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, Option<Response>>, reason: &CloseReason) {
        if conn.state().is_some() {
            let (index, outcome) = self.outcome(conn);
            let outcome = outcome.map_err(|e| format!("{e} ({reason})"));
            self.job.finish(index, outcome);
        }
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        self.job.finish(target.get_tag() as usize, Err(failure.to_string()));
    }
}

/// Fetches every URL concurrently on `threads` IO threads; prints each result as it comes if
/// `live`; returns the results in the order of `urls`.
pub fn crawl(urls: &[String], threads: usize, timeout: Duration, live: bool) -> std::io::Result<Vec<Report>> {
    let job = Arc::new(Job {
        urls: urls.to_vec(),
        started: Instant::now(),
        results: Mutex::new(vec![None; urls.len()]),
        live,
    });
    let mut targets = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        match parse_url(url) {
            Ok(u) => {
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kingpin-crawler\r\nConnection: close\r\n\r\n",
                    u.path, u.host
                );
                targets.push(Target::new(u.host, u.port).first_message(request).tag(i as u64));
            }
            Err(e) => job.finish(i, Err(e)),
        }
    }
    let j = job.clone();
    let config = ClientConfig::default().threads(threads).connect_timeout(timeout).resolve_timeout(timeout);
    EpollTPClient::from_fn(config, move || Crawler { job: j.clone() }).run_until_idle(targets)?;
    let results = std::mem::take(&mut *job.results.lock());
    Ok(urls
        .iter()
        .zip(results)
        .map(|(url, r)| Report {
            url: url.clone(),
            outcome: r.unwrap_or_else(|| Err("no result (internal error)".into())),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/a/b?c").unwrap(),
            Url { host: "127.0.0.1".into(), port: 8080, path: "/a/b?c".into() }
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            Url { host: "localhost".into(), port: 80, path: "/".into() }
        );
        assert_eq!(parse_url("http://[::1]:81/").unwrap(), Url { host: "::1".into(), port: 81, path: "/".into() });
        assert!(parse_url("https://x/").unwrap_err().contains("unsupported scheme"));
        assert!(parse_url("x/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
    }

    #[test]
    fn parses_length_chunked_and_close_delimited_bodies() {
        let mut buf = kingpin::Buffer::new();
        let mut r = Response::default();
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
        parse(&mut r, &mut buf).unwrap();
        assert!(!r.done);
        buf.extend_from_slice(b"lo");
        parse(&mut r, &mut buf).unwrap();
        assert!(r.done && r.body_len == 5);

        let mut r = Response::default();
        buf.clear();
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n");
        parse(&mut r, &mut buf).unwrap();
        buf.extend_from_slice(b"5;x=y\r\npedia\r\n0\r\n\r\n");
        parse(&mut r, &mut buf).unwrap();
        assert!(r.done && r.body_len == 9, "{}", r.body_len);

        let mut r = Response::default();
        buf.clear();
        buf.extend_from_slice(b"HTTP/1.0 404 Not Found\r\n\r\nabc");
        parse(&mut r, &mut buf).unwrap();
        assert_eq!((r.head.as_ref().unwrap().status, r.body_len, r.done), (404, 3, false));

        let mut r = Response::default();
        buf.clear();
        buf.extend_from_slice(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(parse(&mut r, &mut buf).is_err());
    }
}
