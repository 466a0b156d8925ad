//! A minimal HTTP/1.1 server on kingpin: [`HttpHandler`], an [`IoHandler`] that answers
//! `GET /` and `HEAD /` with `Hello, kingpin!`. Its input is framed into request heads by
//! [`HeadDecoder`] (`head.rs`), a [`kingpin::codec::Decoder`] over the parser in `request.rs`.
//!
//! # What it answers
//!
//! - `GET /` and `HEAD /` (query ignored): `200 OK`, `Content-Length: 15`, body
//!   `Hello, kingpin!` (none for `HEAD`). Other methods on `/`: `405` with `Allow: GET, HEAD`.
//!   Other paths: `404`. Every response carries `Date` (formatted once a second).
//! - Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive` (then echoed back). Pipelined requests are all answered, in order,
//!   from one read, with one `send`.
//! - Errors (400, 431, 501, 505) and `Connection: close` end the connection with
//!   [`Conn::close`]: the response goes out, the write side is shut (the client reads end of
//!   stream), and the framework's lingering close drops what the client still sends until it
//!   closes or the linger timeout passes, so bytes the client sent after the last request cannot
//!   turn the close into a reset that destroys the response in flight.
//! - A client that pipelines without reading is throttled: parsing and reading stop while
//!   more than [`HIGH_WATER`] bytes of output are queued, and resume when they drain.
//! - `GET /hash/N` hashes N bytes of a fixed pattern (XXH3, at most
//!   [`MAX_HASH`](super::head::MAX_HASH)) on the server's worker pool, off the IO thread, and
//!   answers the hash in hex. While it runs, that connection's later requests wait (responses
//!   stay in order) and every other connection is served as usual. When every worker is busy
//!   and the queue is full, or the client's address has [`HASH_JOBS_PER_ADDRESS`] hashes going,
//!   it answers `503` with `Retry-After: 1` at once; a client that leaves stops its hash. A bad
//!   N is `400`; a failed hash `500`.
//!
//! The steady state allocates nothing per request: heads are decoded into a small `Copy`
//! [`Head`], responses are built in a `Vec` kept by the handler, and per-connection state (the
//! decoder's included) is a small `Copy` struct set once on connect.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use kingpin::codec::Decoder;
use kingpin::{CancelToken, Conn, Error as KpError, IdleAction, IdleKind, IoHandler, JobError, Parts};

use super::head::{Head, HeadDecoder, Method, Target};
use super::request::Error;

impl Error {
    /// The status this error is answered with.
    pub fn status(self) -> Status {
        match self {
            Error::BadRequest => Status::BadRequest,
            Error::TooLarge => Status::TooLarge,
            Error::NotImplemented => Status::NotImplemented,
            Error::VersionNotSupported => Status::VersionNotSupported,
        }
    }
}

/// Parsing pauses while more than this many response bytes wait for the socket.
pub const HIGH_WATER: usize = 1 << 20;

/// Responses are sent in batches of about this many bytes.
const BATCH: usize = 64 * 1024;

/// The body of `GET /`.
pub const HELLO: &[u8] = b"Hello, kingpin!";

/// The statuses this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200, for `GET /` and `HEAD /`.
    Ok,
    /// 400.
    BadRequest,
    /// 404, for any path but `/`.
    NotFound,
    /// 405, for methods other than GET and HEAD on `/`.
    MethodNotAllowed,
    /// 431.
    TooLarge,
    /// 501.
    NotImplemented,
    /// 505.
    VersionNotSupported,
    /// 503: the worker pool is full.
    Busy,
    /// 500: a job failed.
    Failed,
}

impl Status {
    /// The response head up to (not including) `Date`, and the body.
    fn parts(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Status::Ok => (b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: text/plain\r\n", HELLO),
            Status::BadRequest => {
                (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n", b"Bad Request\n")
            }
            Status::NotFound => {
                (b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n", b"Not Found\n")
            }
            Status::MethodNotAllowed => (
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 19\r\nContent-Type: text/plain\r\nAllow: GET, HEAD\r\n",
                b"Method Not Allowed\n",
            ),
            Status::TooLarge => (
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 32\r\nContent-Type: text/plain\r\n",
                b"Request Header Fields Too Large\n",
            ),
            Status::NotImplemented => (
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n",
                b"Not Implemented\n",
            ),
            Status::VersionNotSupported => (
                b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 27\r\nContent-Type: text/plain\r\n",
                b"HTTP Version Not Supported\n",
            ),
            Status::Failed => (
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 22\r\nContent-Type: text/plain\r\n",
                b"Internal Server Error\n",
            ),
            Status::Busy => (
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n",
                b"Busy\n",
            ),
        }
    }
}

/// What a response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// Nothing: HTTP/1.1 keep-alive.
    Default,
    /// `Connection: keep-alive`, for HTTP/1.0 clients that asked for it.
    KeepAlive,
    /// `Connection: close`: the connection ends after this response.
    Close,
}

/// Appends a whole response to `out`.
fn write_response(out: &mut Vec<u8>, status: Status, head_only: bool, persist: Persist, date: &[u8]) {
    let (head, body) = status.parts();
    out.extend_from_slice(head);
    out.extend_from_slice(b"Date: ");
    finish(out, date, persist, body, head_only);
}

/// Ends a response after `Date: `: the date, the connection header, and the body unless
/// `head_only`.
fn finish(out: &mut Vec<u8>, date: &[u8], persist: Persist, body: &[u8], head_only: bool) {
    out.extend_from_slice(date);
    out.extend_from_slice(match persist {
        Persist::Default => b"\r\n\r\n".as_slice(),
        Persist::KeepAlive => b"\r\nConnection: keep-alive\r\n\r\n",
        Persist::Close => b"\r\nConnection: close\r\n\r\n",
    });
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends a `200` whose body is `body` (made at run time).
fn write_ok(out: &mut Vec<u8>, body: &[u8], head_only: bool, persist: Persist, date: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nDate: ");
    finish(out, date, persist, body, head_only);
}

/// The status that answers `head`, and for `GET /hash/N` the N to hash first.
fn route(head: &Head) -> (Status, Option<u64>) {
    match (head.target, head.method) {
        (Target::Root | Target::Hash(_), Method::Other) => (Status::MethodNotAllowed, None),
        (Target::Root, _) => (Status::Ok, None),
        (Target::Hash(Some(n)), _) => (Status::Ok, Some(n)),
        (Target::Hash(None), _) => (Status::BadRequest, None),
        (Target::Other, _) => (Status::NotFound, None),
    }
}

/// XXH3 of `n` bytes of the pattern 0, 1, …, 250, 0, 1, … — blocking work for a worker.
/// `None` if `token` fired first (the client left).
pub fn hash_pattern(n: u64, token: &CancelToken) -> Option<u64> {
    const BLOCK: usize = 251 * 256; // whole periods of the pattern: every block is the same
    let block: Vec<u8> = (0..BLOCK).map(|i| (i % 251) as u8).collect();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut left = n;
    while left > 0 {
        if token.is_cancelled() {
            return None;
        }
        let take = left.min(BLOCK as u64) as usize;
        hasher.update(&block[..take]);
        left -= take as u64;
    }
    Some(hasher.digest())
}

/// Most `/hash` jobs one client address may have queued or running at once: one address
/// cannot hold every worker while others get `503`.
pub const HASH_JOBS_PER_ADDRESS: usize = 4;

/// A client address as one server sees it: the server's own port, and the client's address
/// (so that servers in one process keep separate counts).
type Client = (u16, IpAddr);

/// `/hash` jobs queued or running, per client address (all IO threads).
fn hash_jobs() -> &'static Mutex<HashMap<Client, usize>> {
    static JOBS: OnceLock<Mutex<HashMap<Client, usize>>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

/// The address a job place belongs to: an IPv6 peer by its /64 (a host gets a whole /64, as
/// the server's connection cap counts it), an IPv4-mapped one as its IPv4 address.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Takes one of `ip`'s job places; false if it has none left.
fn take_hash_place(ip: Client) -> bool {
    let mut jobs = hash_jobs().lock().unwrap_or_else(PoisonError::into_inner);
    let n = jobs.entry(ip).or_default();
    if *n >= HASH_JOBS_PER_ADDRESS {
        return false;
    }
    *n += 1;
    true
}

/// Gives one of `ip`'s job places back.
fn give_hash_place(ip: Client) {
    let mut jobs = hash_jobs().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = jobs.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            jobs.remove(&ip);
        }
    }
}

/// `Date` in IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`) for `secs` since the epoch.
fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), for years 1970..=9999.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let mut d = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    d[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    d[5..7].copy_from_slice(&two(day));
    d[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    d[12..14].copy_from_slice(&two(year / 100));
    d[14..16].copy_from_slice(&two(year));
    d[17..19].copy_from_slice(&two(rem / 3600));
    d[20..22].copy_from_slice(&two(rem / 60 % 60));
    d[23..25].copy_from_slice(&two(rem % 60));
    d
}

// ---------------------------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------------------------

/// A response owed once the body of its request has been read.
#[derive(Debug, Clone, Copy)]
struct Owed {
    status: Status,
    head_only: bool,
    persist: Persist,
    /// `GET /hash/N`: the response comes from a job on the worker pool.
    hash: Option<u64>,
}

/// Per-connection state: the handler's typed `ConnState`, kept inline with each connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnState {
    /// Frames the input into request heads; keeps where the search for the end of a partial
    /// head resumes.
    heads: HeadDecoder,
    /// Body bytes of the current request still to be read and dropped.
    body_left: u64,
    /// The response to send once `body_left` reaches 0.
    owed: Option<Owed>,
    /// The last response is out (or going); the connection is closing.
    closing: bool,
    /// Parsing and reading paused on [`HIGH_WATER`]; they resume on write completion.
    stalled: bool,
    /// A `/hash` job runs for this connection: parsing waits for its answer (what arrives
    /// meanwhile stays in the input).
    hashing: bool,
}

/// The HTTP handler of one IO thread: parses requests and answers them (see the module docs).
///
/// Build one per thread, e.g. `EpollTPServer::from_fn(config, HttpHandler::default)`.
#[derive(Debug)]
pub struct HttpHandler {
    /// Responses of the current batch, reused across calls.
    out: Vec<u8>,
    /// The second `date` was formatted for.
    date_secs: u64,
    /// The current `Date` value.
    date: [u8; 29],
}

impl Default for HttpHandler {
    fn default() -> Self {
        HttpHandler { out: Vec::with_capacity(BATCH), date_secs: 0, date: http_date(0) }
    }
}

impl HttpHandler {
    /// Reformats the `Date` value when the second has changed.
    fn refresh_date(&mut self) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = http_date(secs);
        }
    }

    /// Answers every complete request in the input, in order, with one send per batch; a
    /// `/hash/N` request starts its job and the rest waits for its answer. A loop, not a
    /// recursion: a client pipelining thousands of `/hash` requests to a full pool is answered
    /// `503` after `503` at a constant stack depth.
    fn process(&mut self, conn: &mut Conn<'_, ConnState>) {
        while let Some((n, owed)) = self.serve(conn) {
            if self.start_hash(conn, n, owed) {
                return;
            }
        }
    }

    /// Answers the complete requests in the input up to the first `/hash/N` (returned, for
    /// [`Self::process`] to start) or the end of what can be answered now.
    fn serve(&mut self, conn: &mut Conn<'_, ConnState>) -> Option<(u64, Owed)> {
        let Parts { input, state: st, mut output } = conn.parts();
        if st.closing {
            input.clear();
            return None;
        }
        if st.hashing {
            return None; // the job's answer comes first; the rest waits in the input
        }
        let mut job = None;
        self.refresh_date();
        self.out.clear();
        loop {
            if st.body_left > 0 {
                let n = st.body_left.min(input.len() as u64);
                input.advance(n as usize);
                st.body_left -= n;
                if st.body_left > 0 {
                    break;
                }
            }
            if let Some(owed) = st.owed.take() {
                if let Some(n) = owed.hash {
                    job = Some((n, owed));
                    break;
                }
                write_response(&mut self.out, owed.status, owed.head_only, owed.persist, &self.date);
                if owed.persist == Persist::Close {
                    st.closing = true;
                    break;
                }
            }
            if input.is_empty() {
                break;
            }
            if self.out.len() >= BATCH {
                output.send(&self.out);
                self.out.clear();
            }
            if output.pending() > HIGH_WATER {
                st.stalled = true;
                break;
            }
            let head = match st.heads.decode(input) {
                Ok(None) => break, // a partial head waits in the input
                Ok(Some(head)) => head,
                // Never: the decoder refuses a head with an item, which carries its status.
                Err(_) => Err(Error::BadRequest),
            };
            match head {
                Ok(head) => {
                    let (status, hash) = route(&head);
                    let persist = match (head.keep_alive, head.minor) {
                        (false, _) => Persist::Close,
                        (true, 0) => Persist::KeepAlive,
                        (true, _) => Persist::Default,
                    };
                    st.owed = Some(Owed { status, head_only: head.method == Method::Head, persist, hash });
                    st.body_left = head.content_length;
                    if head.expect_continue && st.body_left > input.len() as u64 {
                        self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                }
                Err(e) => {
                    write_response(&mut self.out, e.status(), false, Persist::Close, &self.date);
                    st.closing = true;
                    break;
                }
            }
        }
        output.send(&self.out);
        let (closing, stalled) = (st.closing, st.stalled);
        if job.is_some() {
            return job;
        }
        if closing {
            input.clear();
            conn.close(); // lingers: what the client still sends is dropped, not reset
        } else if stalled {
            conn.pause_reading();
        }
        None
    }

    /// Hashes on the worker pool for `GET /hash/N`; parsing waits for the answer. A full pool
    /// is answered `503` at once. Returns whether to stop serving this connection for now (the
    /// job runs, or the connection closes); false: go on with the requests after it.
    fn start_hash(&mut self, conn: &mut Conn<'_, ConnState>, n: u64, owed: Owed) -> bool {
        let ip = (conn.local_addr().map_or(0, |a| a.port()), network(conn.peer_addr().ip()));
        let done =
            move |me: &mut HttpHandler, conn: Option<&mut Conn<'_, ConnState>>, hash: Result<Option<u64>, JobError>| {
                give_hash_place(ip);
                let Some(conn) = conn else { return }; // the client left; its hash stopped
                me.refresh_date();
                me.out.clear();
                match hash {
                    Ok(Some(h)) => {
                        write_ok(&mut me.out, format!("{h:016x}\n").as_bytes(), owed.head_only, owed.persist, &me.date)
                    }
                    // Cancelled (the connection is closing) or failed: say so, and close.
                    Ok(None) | Err(_) => {
                        write_response(&mut me.out, Status::Failed, owed.head_only, Persist::Close, &me.date);
                        conn.send(&me.out);
                        me.finish_owed(conn, Persist::Close);
                        return;
                    }
                }
                conn.send(&me.out);
                if me.finish_owed(conn, owed.persist) {
                    me.process(conn);
                }
            };
        let queued = if take_hash_place(ip) {
            let queued = Self::spawn_blocking(conn, move |token| hash_pattern(n, token), done);
            if queued.is_err() {
                give_hash_place(ip);
            }
            queued
        } else {
            Err(KpError::Busy) // this address has its share of the workers
        };
        match queued {
            // Reading goes on (into the input, bounded by the input limit), so that a client
            // that leaves is seen at once and its hash stops.
            Ok(()) => {
                conn.state_mut().hashing = true;
                true
            }
            Err(KpError::Busy | KpError::Stopped) => {
                self.out.clear();
                write_response(&mut self.out, Status::Busy, owed.head_only, owed.persist, &self.date);
                conn.send(&self.out);
                !self.finish_owed(conn, owed.persist)
            }
            Err(_) => true, // closing already
        }
    }

    /// After the answer to a job's request: closes if it said so. Returns whether the
    /// requests after it are to be served.
    fn finish_owed(&mut self, conn: &mut Conn<'_, ConnState>, persist: Persist) -> bool {
        let st = conn.state_mut();
        st.hashing = false;
        if persist == Persist::Close {
            st.closing = true;
            conn.input().clear();
            conn.close();
            return false;
        }
        true
    }
}

impl IoHandler for HttpHandler {
    type ConnState = ConnState;

    fn on_message(&mut self, conn: &mut Conn<'_, ConnState>) {
        self.process(conn);
    }

    /// A connection waiting for its `/hash` answer sends nothing meanwhile: not idle.
    fn on_idle(&mut self, conn: &mut Conn<'_, ConnState>, _kind: IdleKind) -> IdleAction {
        if conn.state().hashing {
            IdleAction::Keep
        } else {
            IdleAction::Close
        }
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, ConnState>) {
        let st = conn.state_mut();
        if st.stalled && !st.closing {
            st.stalled = false;
            conn.resume_reading();
            self.process(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_consistent() {
        for status in [
            Status::Ok,
            Status::BadRequest,
            Status::NotFound,
            Status::MethodNotAllowed,
            Status::TooLarge,
            Status::NotImplemented,
            Status::VersionNotSupported,
            Status::Busy,
            Status::Failed,
        ] {
            let (head, body) = status.parts();
            let head = std::str::from_utf8(head).unwrap();
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())), "{head}");
            assert!(head.ends_with("\r\n"));
        }
        let mut out = Vec::new();
        write_response(&mut out, Status::Ok, false, Persist::Default, b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: text/plain\r\n\
              Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, kingpin!"
        );
        out.clear();
        write_response(&mut out, Status::NotFound, true, Persist::Close, b"D");
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\nDate: D\r\n\
              Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn routes() {
        let head = |method, target| Head {
            method,
            target,
            minor: 1,
            keep_alive: true,
            content_length: 0,
            expect_continue: false,
        };
        for method in [Method::Get, Method::Head] {
            assert_eq!(route(&head(method, Target::Root)), (Status::Ok, None));
            assert_eq!(route(&head(method, Target::Hash(Some(7)))), (Status::Ok, Some(7)));
            assert_eq!(route(&head(method, Target::Hash(None))), (Status::BadRequest, None));
            assert_eq!(route(&head(method, Target::Other)), (Status::NotFound, None));
        }
        for target in [Target::Root, Target::Hash(Some(7)), Target::Hash(None)] {
            assert_eq!(route(&head(Method::Other, target)), (Status::MethodNotAllowed, None), "{target:?}");
        }
        assert_eq!(route(&head(Method::Other, Target::Other)), (Status::NotFound, None));
    }

    #[test]
    fn http_date_matches_chrono() {
        let mut secs = 0u64;
        while secs < 253_402_300_799 {
            let want = chrono::DateTime::from_timestamp(secs as i64, 0)
                .unwrap()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            assert_eq!(std::str::from_utf8(&http_date(secs)).unwrap(), want, "at {secs}");
            secs = secs * 3 / 2 + 86_399 + secs % 7;
        }
        for i in 0..5000u64 {
            let secs = i * 3_456_789 + i % 86_400;
            let want = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap().format("%a, %d %b %Y %H:%M:%S GMT");
            assert_eq!(std::str::from_utf8(&http_date(secs)).unwrap(), want.to_string(), "at {secs}");
        }
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn job_places_count_ipv6_peers_by_64_and_mapped_ones_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        assert_eq!(network("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
