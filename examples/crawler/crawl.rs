//! The crawler's engine: fetch many `http://` and `https://` URLs concurrently with an
//! `EpollTPClient` and report, for each, its status line, body size and time — or the error
//! that stopped it.
//!
//! `https://` URLs are fetched over TLS (rustls, ALPN `http/1.1`) with the client config of
//! [`Settings::tls`], which says which roots to trust; there is no system root store here, so
//! without one an `https://` URL fails with [`NO_TLS_ROOTS`]. The server's certificate must be
//! valid for the URL's host (a name, or an IP address).
//!
//! Every wait is bounded: connecting, name lookup and the TLS handshake by the connect timeout,
//! and a connected
//! server by the idle timeout (it must send something at least that often, so one that accepts
//! and stays silent fails its URL instead of holding the crawl). [`Control::stop`] ends a crawl
//! early (Ctrl+C); the URLs it cut short are reported as not finished.
//!
//! Shared by `main.rs` and by the integration tests (`tests/crawler.rs`, `tests/fuzz_parsers.rs`).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kingpin::{
    ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, IdleAction, IdleKind, IdleTimeouts, IoHandler,
    Parts, Shutdown, Target,
};
use parking_lot::Mutex;

/// How long a connected server may send nothing before its URL fails, unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a crawl runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// IO threads.
    pub threads: usize,
    /// Longest a connect, or a name lookup, may take.
    pub connect_timeout: Duration,
    /// Longest a connected server may send nothing (before or during its response).
    pub idle_timeout: Duration,
    /// Print each result as it comes.
    pub live: bool,
    /// The TLS client config for `https://` URLs (the roots it trusts); `None`: they fail.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Settings {
    /// `threads` IO threads, a 5 s connect timeout, [`DEFAULT_IDLE_TIMEOUT`], quiet, no TLS.
    pub fn new(threads: usize) -> Self {
        Settings {
            threads,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            live: false,
            tls: None,
        }
    }
}

/// Watches and ends a crawl from any thread: how many URLs are done, and [`Control::stop`]
/// (e.g. from a Ctrl+C handler), after which the client shuts down, the URLs already done keep
/// their results and the others are reported as not finished. For one crawl.
#[derive(Clone, Default)]
pub struct Control(Arc<ControlState>);

#[derive(Default)]
struct ControlState {
    stopped: AtomicBool,
    done: AtomicUsize,
    client: OnceLock<Shutdown>,
}

impl Control {
    /// Asks the crawl to stop; returns at once. Any thread, any time (before the crawl starts
    /// too); idempotent.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        if let Some(client) = self.0.client.get() {
            // Nobody will read the answers: requests still unsent are dropped.
            client.shutdown_with_timeout(Duration::ZERO);
        }
    }

    /// Whether [`Control::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// URLs done so far (fetched or failed), e.g. for a progress display.
    #[allow(dead_code)] // the crawler prints each URL as it is done instead
    pub fn done(&self) -> usize {
        self.0.done.load(Ordering::SeqCst)
    }
}

/// What an `https://` URL fails with when the crawl has no TLS config.
pub const NO_TLS_ROOTS: &str =
    "https needs a root certificate to trust: give --ca-file FILE (PEM); there is no system root store here";

/// A URL split into what the crawler needs: `http://` or `https://`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https://`: over TLS.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    /// The `Host` header's value: the host (an IPv6 address in brackets), and the port unless
    /// it is the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `http://host[:port][/path]` (port 80 by default) and `https://…` (443); the scheme
/// in any case.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let (tls, rest) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
        Some((scheme, _)) => return Err(format!("unsupported scheme {scheme:?} (only http and https)")),
        None => return Err("missing scheme (expected http:// or https://)".into()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let port = |p: &str| p.parse::<u16>().map_err(|_| format!("bad port {p:?}"));
    let default_port = if tls { 443 } else { 80 };
    // `host`, `host:port`, `[v6]` or `[v6]:port`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((h, "")) => (h, default_port),
            Some((h, after)) => match after.strip_prefix(':') {
                Some(p) => (h, port(p)?),
                None => return Err(format!("bad host {authority:?}")),
            },
            None => return Err(format!("bad host {authority:?} (no closing ])")),
        },
        None => match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("bad host {authority:?} (an IPv6 address goes in brackets)"))
            }
            Some((h, p)) => (h, port(p)?),
            None => (authority, default_port),
        },
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok(Url { tls, host: host.into(), port, path: path.into() })
}

/// What fetching one URL gave.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status_line: String,
    pub status: u16,
    pub body_len: usize,
    pub elapsed: Duration,
}

/// What [`Report::outcome`] says of a URL that a stop cut short.
pub const NOT_FINISHED: &str = "not finished: the crawl was stopped";

/// The result for one URL, in the order the URLs were given.
#[derive(Clone, Debug)]
pub struct Report {
    pub url: String,
    /// `Err` says why it failed, or [`NOT_FINISHED`] when `finished` is false.
    pub outcome: Result<Fetched, String>,
    /// False when [`Control::stop`] ended the crawl before this URL was done.
    pub finished: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.finished {
            return write!(f, "{:<28} {:>11} {:>12}  {}", "NOT FINISHED", "-", "-", self.url);
        }
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
    control: Control,
}

impl Job {
    fn finish(&self, index: usize, outcome: Result<Fetched, String>) {
        let mut results = self.results.lock();
        if results[index].is_none() {
            let report = Report { url: self.urls[index].clone(), outcome: outcome.clone(), finished: true };
            if self.live {
                println!("{report}");
            }
            results[index] = Some(outcome);
            self.control.0.done.fetch_add(1, Ordering::SeqCst);
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
    idle_timeout: Duration,
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

    /// The server sent nothing for the idle timeout: its URL fails and the crawl goes on.
    fn on_idle(&mut self, conn: &mut Conn<'_, Option<Response>>, _kind: IdleKind) -> IdleAction {
        let index = conn.target().map_or(0, |t| t.get_tag() as usize);
        let when = match conn.state_mut().take() {
            Some(Response { head: Some(_), body_len, .. }) => format!("after {body_len} body bytes"),
            Some(Response { head: None, .. }) | None => "before a response".into(),
        };
        let silent = self.idle_timeout;
        self.job.finish(index, Err(format!("timed out {when}: the server sent nothing for {silent:?}")));
        IdleAction::Close
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, Option<Response>>, reason: &CloseReason) {
        // Closed by a stop: the URL is not finished rather than failed.
        if conn.state().is_some() && !matches!(reason, CloseReason::Shutdown | CloseReason::ShutdownForced) {
            let (index, outcome) = self.outcome(conn);
            let outcome = outcome.map_err(|e| format!("{e} ({reason})"));
            self.job.finish(index, outcome);
        }
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        // `Interrupted`: the client shut down (a stop) before the connect.
        if failure.error.kind() != io::ErrorKind::Interrupted {
            self.job.finish(target.get_tag() as usize, Err(failure.to_string()));
        }
    }
}

/// Fetches every URL concurrently on `threads` IO threads, with the connect and name lookup
/// `timeout` and [`DEFAULT_IDLE_TIMEOUT`]; prints each result as it comes if `live`; returns
/// the results in the order of `urls`.
///
/// The short form the tests use (`main` takes [`crawl_with`]).
///
/// # Errors
/// When the client cannot start (no thread, no epoll).
#[allow(dead_code)]
pub fn crawl(urls: &[String], threads: usize, timeout: Duration, live: bool) -> io::Result<Vec<Report>> {
    let settings = Settings { connect_timeout: timeout, live, ..Settings::new(threads) };
    crawl_with(urls, &settings, &Control::default())
}

/// Fetches every URL concurrently as `settings` say, until done or until `control` is told to
/// stop; returns the results in the order of `urls`.
///
/// # Errors
/// When the client cannot start (no thread, no epoll).
pub fn crawl_with(urls: &[String], settings: &Settings, control: &Control) -> io::Result<Vec<Report>> {
    let job = Arc::new(Job {
        urls: urls.to_vec(),
        started: Instant::now(),
        results: Mutex::new(vec![None; urls.len()]),
        live: settings.live,
        control: control.clone(),
    });
    let mut targets = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        match parse_url(url) {
            Ok(u) if u.tls && settings.tls.is_none() => job.finish(i, Err(NO_TLS_ROOTS.into())),
            Ok(u) => {
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kingpin-crawler\r\nConnection: close\r\n\r\n",
                    u.path,
                    u.authority()
                );
                let mut target = Target::new(u.host.clone(), u.port).first_message(request).tag(i as u64);
                if u.tls {
                    // The name the certificate must be valid for, and the SNI sent.
                    target = target.tls(u.host);
                }
                targets.push(target);
            }
            Err(e) => job.finish(i, Err(e)),
        }
    }
    let mut config = ClientConfig::default()
        .threads(settings.threads)
        .connect_timeout(settings.connect_timeout)
        .resolve_timeout(settings.connect_timeout)
        .tls_handshake_timeout(settings.connect_timeout)
        .idle_timeouts(IdleTimeouts::read(settings.idle_timeout))
        // A crawler closes once it has read what it came for (or gives up); waiting for the
        // server's end of stream after that would only delay a stop by the linger.
        .linger_timeout(Duration::ZERO);
    if let Some(tls) = &settings.tls {
        config = config.tls(tls.clone());
    }
    let (j, idle_timeout) = (job.clone(), settings.idle_timeout);
    let client = EpollTPClient::from_fn(config, move || Crawler { job: j.clone(), idle_timeout }).start()?;
    let _ = control.0.client.set(client.shutdown_handle());
    for target in targets {
        // Fails only once a stop has shut the client down: that URL is not finished.
        if client.add(target).is_err() {
            break;
        }
    }
    // A stop before the client was registered did not reach it.
    if control.is_stopped() {
        control.stop();
    }
    // Done when every URL is; a stop is noticed within a tenth of a second.
    while !client.wait_idle(Duration::from_millis(100)) && !control.is_stopped() {}
    if !control.is_stopped() {
        client.shutdown(); // else the stop did
    }
    client.join()?;
    let stopped = control.is_stopped();
    let results = std::mem::take(&mut *job.results.lock());
    Ok(urls
        .iter()
        .zip(results)
        .map(|(url, r)| match r {
            Some(outcome) => Report { url: url.clone(), outcome, finished: true },
            None if stopped => Report { url: url.clone(), outcome: Err(NOT_FINISHED.into()), finished: false },
            None => Report { url: url.clone(), outcome: Err("no result (internal error)".into()), finished: true },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = |tls, host: &str, port, path: &str| Url { tls, host: host.into(), port, path: path.into() };
        assert_eq!(parse_url("http://127.0.0.1:8080/a/b?c").unwrap(), url(false, "127.0.0.1", 8080, "/a/b?c"));
        assert_eq!(parse_url("http://localhost").unwrap(), url(false, "localhost", 80, "/"));
        assert_eq!(parse_url("http://[::1]:81/").unwrap(), url(false, "::1", 81, "/"));
        assert_eq!(parse_url("https://x/").unwrap(), url(true, "x", 443, "/"));
        assert_eq!(parse_url("https://localhost:8443/a?b").unwrap(), url(true, "localhost", 8443, "/a?b"));
        assert_eq!(parse_url("https://[::1]").unwrap(), url(true, "::1", 443, "/"));
        assert!(parse_url("ftp://x/").unwrap_err().contains("unsupported scheme"));
        assert_eq!(parse_url("HTTPS://x").unwrap(), url(true, "x", 443, "/"));
        assert!(parse_url("x/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("https://:443/").unwrap_err().contains("missing host"));
        assert_eq!(parse_url("http://[::1]/").unwrap(), url(false, "::1", 80, "/"));
        assert_eq!(parse_url("http://[fe80::1]:8080").unwrap(), url(false, "fe80::1", 8080, "/"));
        assert!(parse_url("http://::1/").unwrap_err().contains("brackets"));
        assert!(parse_url("http://[::1/").unwrap_err().contains("no closing ]"));
        assert!(parse_url("http://[::1]x/").is_err());
        assert!(parse_url("http://[::1]:x/").unwrap_err().contains("bad port"));
    }

    #[test]
    fn host_header_names_the_port_unless_default() {
        let authority = |u: &str| parse_url(u).unwrap().authority();
        assert_eq!(authority("http://example.org/"), "example.org");
        assert_eq!(authority("http://example.org:80/"), "example.org");
        assert_eq!(authority("http://example.org:443/"), "example.org:443");
        assert_eq!(authority("https://example.org:443/"), "example.org");
        assert_eq!(authority("https://127.0.0.1:8443/"), "127.0.0.1:8443");
        assert_eq!(authority("https://[::1]/"), "[::1]");
        assert_eq!(authority("http://[::1]:8080/"), "[::1]:8080");
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
