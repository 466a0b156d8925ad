//! The `http_server` example's handler over real sockets: keep-alive, pipelining, `HEAD`,
//! `Connection: close`, request bodies, errors that close, and curl where it is installed.

#[path = "../examples/http_server/head.rs"]
mod head;
#[path = "../examples/http_server/http.rs"]
mod http;
#[path = "../examples/http_server/request.rs"]
mod request;
mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use kingpin::{EpollTPServer, ServerConfig, ServerHandle};
use util::{connect, wait_until, IO_TIMEOUT};

fn start() -> ServerHandle<http::HttpHandler> {
    EpollTPServer::from_fn(ServerConfig::default().threads(2), http::HttpHandler::default).start().unwrap()
}

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A client connection that reads responses one by one (every read bounded by the socket's
/// timeout).
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        let s = connect(addr);
        Client { writer: s.try_clone().unwrap(), reader: BufReader::new(s) }
    }

    fn send(&mut self, data: &[u8]) {
        self.writer.write_all(data).expect("write");
    }

    /// Reads one response; `head_only` for the answer to a `HEAD` (or a 1xx), which has no body
    /// whatever its `Content-Length`.
    fn read(&mut self, head_only: bool) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let mut parts = line.trim_end().splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status line {line:?}"));
        assert!(line.ends_with("\r\n"), "status line {line:?}");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            assert!(line.ends_with("\r\n"), "header line {line:?}");
            if line == "\r\n" {
                break;
            }
            let (name, value) = line.trim_end().split_once(':').unwrap_or_else(|| panic!("header {line:?}"));
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if !head_only && status >= 200 {
            let len: usize = response.header("content-length").expect("Content-Length").parse().unwrap();
            response.body = vec![0; len];
            self.reader.read_exact(&mut response.body).expect("body");
        }
        response
    }

    /// Asserts the server closes the connection cleanly with nothing more to read.
    fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).expect("a clean end of stream, not a reset or timeout");
        assert!(rest.is_empty(), "unexpected bytes after the last response: {:?}", String::from_utf8_lossy(&rest));
    }
}

fn assert_hello(r: &Response) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("15"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body, b"Hello, kingpin!");
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n";

#[test]
fn single_get() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(GET);
    let r = c.read(false);
    assert_hello(&r);
    assert!(!r.closes());
    let date = r.header("date").expect("Date");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "Date: {date}");
}

#[test]
fn head_has_headers_but_no_body() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("15"));
    // Had a body been sent, it would precede the next status line.
    c.send(GET);
    assert_hello(&c.read(false));
    c.send(b"HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(true).status, 404);
    c.send(GET);
    assert_hello(&c.read(false));
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    for _ in 0..20 {
        c.send(GET);
        assert_hello(&c.read(false));
    }
    assert_eq!(server.stats().accepted, 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let (req, want): (&[u8], _) = match i % 4 {
            0 => (GET, (200, false)),
            1 => (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", (404, false)),
            2 => (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", (200, true)),
            _ => (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", (405, false)),
        };
        batch.extend_from_slice(req);
        expected.push(want);
    }
    c.send(&batch);
    for (i, (status, head_only)) in expected.into_iter().enumerate() {
        let r = c.read(head_only);
        assert_eq!(r.status, status, "response {i}: {r:?}");
    }
    c.send(GET);
    assert_hello(&c.read(false));
}

#[test]
fn many_pipelined_requests_with_a_slow_reader() {
    // More responses than one batch and than the socket buffers hold: parsing pauses and
    // resumes as the output drains, and nothing is lost or reordered.
    let server = start();
    let mut c = Client::new(server.local_addr());
    const N: usize = 100_000;
    let mut batch = Vec::with_capacity(N * 40);
    for i in 0..N {
        batch.extend_from_slice(if i % 2 == 0 { GET } else { b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n" });
    }
    let mut writer = c.writer.try_clone().unwrap();
    std::thread::scope(|s| {
        let w = s.spawn(move || writer.write_all(&batch));
        std::thread::sleep(Duration::from_millis(300));
        for i in 0..N {
            let r = c.read(false);
            assert_eq!(r.status, if i % 2 == 0 { 200 } else { 404 }, "response {i}");
        }
        w.join().unwrap().expect("write");
    });
}

#[test]
fn request_split_across_many_writes() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    for chunk in GET.chunks(3) {
        c.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_hello(&c.read(false));
    // And once more a byte at a time, with CRLFs split.
    for &b in GET {
        c.send(&[b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_hello(&c.read(false));
}

#[test]
fn connection_close_is_honoured() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(GET);
    assert_hello(&c.read(false));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read(false);
    assert_hello(&r);
    assert!(r.closes(), "{r:?}");
    c.expect_eof();
    drop(c);
    wait_until(IO_TIMEOUT, "the server to close the connection", || server.stats().closed == 1);
}

#[test]
fn requests_after_connection_close_are_ignored() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    let mut batch = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n".to_vec();
    batch.extend_from_slice(GET);
    c.send(&batch);
    assert!(c.read(false).closes());
    c.expect_eof();
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read(false);
    assert_hello(&r);
    assert!(r.closes());
    c.expect_eof();

    let mut c = Client::new(server.local_addr());
    for _ in 0..3 {
        c.send(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let r = c.read(false);
        assert_hello(&r);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn unknown_path_is_404() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"Not Found\n");
    assert!(!r.closes());
    c.send(b"GET /?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_hello(&c.read(false));
}

#[test]
fn other_methods_on_root_are_405() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        c.send(format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read(false);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert!(!r.closes());
    }
}

#[test]
fn post_body_split_across_writes_then_get() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    let body = util::pattern(100_000, 7);
    c.send(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    for chunk in body.chunks(7_000) {
        c.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = c.read(false);
    assert_eq!(r.status, 405);
    // The next request follows the body directly, in the same write as its last bytes.
    c.send(
        format!("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello{}", std::str::from_utf8(GET).unwrap())
            .as_bytes(),
    );
    assert_eq!(c.read(false).status, 404);
    assert_hello(&c.read(false));
}

#[test]
fn expect_100_continue() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read(true);
    assert_eq!(r.status, 100);
    c.send(b"body");
    assert_eq!(c.read(false).status, 405);
    // With the body already there, no interim response.
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody");
    assert_eq!(c.read(false).status, 405);
}

/// Sends `request` and expects `status`, `Connection: close` and a clean end of stream.
fn expect_error_and_close(request: &[u8], status: u16) {
    let server = start();
    let mut c = Client::new(server.local_addr());
    c.send(request);
    let r = c.read(false);
    assert_eq!(r.status, status, "{r:?}");
    assert!(r.closes(), "{r:?}");
    c.expect_eof();
}

#[test]
fn malformed_request_line_is_400_and_closes() {
    expect_error_and_close(b"GET /\r\nHost: x\r\n\r\n", 400);
    expect_error_and_close(b"hello world\r\n\r\n", 400);
    expect_error_and_close(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
    expect_error_and_close(b"GET / HTTP/1.1\r\n\r\n", 400); // no Host
}

#[test]
fn a_good_request_before_a_malformed_one_is_answered() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    let mut batch = GET.to_vec();
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n");
    c.send(&batch);
    assert_hello(&c.read(false));
    let r = c.read(false);
    assert_eq!(r.status, 400);
    assert!(r.closes());
    c.expect_eof();
}

#[test]
fn oversized_head_is_431_and_closes() {
    // Without an end in sight: refused as soon as 8 KiB have arrived.
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat(b'a').take(request::MAX_HEAD));
    expect_error_and_close(&huge, 431);
    // Complete, but one byte over.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat(b'a').take(request::MAX_HEAD + 1 - head.len() - 4));
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), request::MAX_HEAD + 1);
    expect_error_and_close(&head, 431);
}

#[test]
fn error_response_survives_a_client_that_keeps_sending() {
    // The client streams headers without end and reads only later: the lingering close must
    // deliver the 431 intact rather than reset the connection.
    let server = start();
    let mut c = Client::new(server.local_addr());
    let mut writer = c.writer.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
        for _ in 0..200 {
            if writer.write_all(&[b'x'; 1024]).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let r = c.read(false);
    assert_eq!(r.status, 431);
    assert!(r.closes());
    c.expect_eof();
    sender.join().unwrap();
}

#[test]
fn transfer_encoding_is_501_and_closes() {
    expect_error_and_close(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn http_2_is_505() {
    expect_error_and_close(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

#[test]
fn curl() {
    let version = match Command::new("curl").arg("--version").output() {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string()
        }
        Ok(out) => {
            println!("curl test skipped: `curl --version` failed ({})", out.status);
            return;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("curl test skipped: curl is not on PATH (apt-get install -y curl)");
            return;
        }
        Err(e) => {
            println!("curl test skipped: cannot run curl: {e}");
            return;
        }
    };
    println!("curl test with {version}");
    let server = start();
    let url = format!("http://{}/", server.local_addr());
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-S", "--max-time", &IO_TIMEOUT.as_secs().to_string()])
            .args(args)
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    };

    for extra in [None, Some("--http1.1")] {
        let mut args = vec!["-i", url.as_str()];
        args.extend(extra);
        let out = curl(&args);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nContent-Length: 15\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nHello, kingpin!"), "{out}");
    }

    let out = curl(&["-I", &url]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\n"), "{out}");

    // Two URLs in one invocation share one kept-alive connection.
    let accepted = server.stats().accepted;
    let missing = format!("{url}missing");
    let out = curl(&["-i", &url, &missing]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Hello, kingpin!HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert!(out.ends_with("Not Found\n"), "{out}");
    assert_eq!(server.stats().accepted, accepted + 1, "curl reused its connection");

    // A POST body, through the same kept-alive connection as the GET after it.
    let out = curl(&["-i", "--data-binary", "some body", &url, "--next", "-i", &url]);
    assert!(out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{out}");
    assert!(out.ends_with("Hello, kingpin!"), "{out}");
}

fn start_with(config: ServerConfig) -> ServerHandle<http::HttpHandler> {
    EpollTPServer::from_fn(config, http::HttpHandler::default).start().unwrap()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// What `/hash/N` answers, worked out here.
fn expected_hash(n: u64) -> Vec<u8> {
    let h = http::hash_pattern(n, &kingpin::CancelToken::new()).unwrap();
    format!("{h:016x}\n").into_bytes()
}

#[test]
fn hash_route_answers_from_the_worker_pool_in_order() {
    let server = start();
    let mut c = Client::new(server.local_addr());
    // A hash pipelined between two plain requests: the answers keep the requests' order.
    let mut batch = GET.to_vec();
    batch.extend(get("/hash/1000000"));
    batch.extend(GET);
    batch.extend(get("/hash/0"));
    c.send(&batch);
    assert_hello(&c.read(false));
    let r = c.read(false);
    assert_eq!((r.status, r.body.clone()), (200, expected_hash(1_000_000)), "{r:?}");
    assert_hello(&c.read(false));
    let r = c.read(false);
    assert_eq!((r.status, r.body.clone()), (200, expected_hash(0)), "{r:?}");
    for bad in ["/hash/", "/hash/x1", "/hash/+5", "/hash/1099511627777", "/hash/99999999999999999999"] {
        c.send(&get(bad));
        assert_eq!(c.read(false).status, 400, "{bad}");
    }
}

#[test]
fn hash_route_answers_503_when_the_pool_is_full_and_stops_for_a_client_that_left() {
    let server = start_with(ServerConfig::default().threads(1).worker_threads(1).worker_queue(1));
    let addr = server.local_addr();
    let huge = format!("/hash/{}", head::MAX_HASH);
    // One hash runs (1 TiB: it would take minutes), one waits in the queue.
    let mut running = Client::new(addr);
    running.send(&get(&huge));
    wait_until(IO_TIMEOUT, "a worker busy", || server.workers().stats().busy == 1);
    let mut queued = Client::new(addr);
    queued.send(&get(&huge));
    wait_until(IO_TIMEOUT, "a job queued", || server.workers().stats().queued == 1);
    // The next is refused at once; plain requests are served as usual meanwhile.
    let mut c = Client::new(addr);
    c.send(&get("/hash/10"));
    let r = c.read(false);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{r:?}");
    assert!(!r.closes(), "a busy answer keeps the connection");
    c.send(GET);
    assert_hello(&c.read(false));
    // Clients that leave stop their hashes: the pool is free again.
    drop(running);
    drop(queued);
    wait_until(IO_TIMEOUT, "the pool idle", || {
        let s = server.workers().stats();
        (s.busy, s.queued) == (0, 0)
    });
    c.send(&get("/hash/10"));
    let r = c.read(false);
    assert_eq!((r.status, r.body.clone()), (200, expected_hash(10)), "{r:?}");
}

#[test]
fn thousands_of_pipelined_hashes_to_a_full_pool_are_answered_503_without_deep_recursion() {
    let server = start_with(ServerConfig::default().threads(1).worker_threads(1).worker_queue(1));
    let addr = server.local_addr();
    let huge = format!("/hash/{}", head::MAX_HASH);
    // The pool is full: one runs, one waits (from two other addresses than the flood's).
    let mut running = Client::new(addr);
    running.send(&get(&huge));
    wait_until(IO_TIMEOUT, "a worker busy", || server.workers().stats().busy == 1);
    let mut queued = Client::new(addr);
    queued.send(&get(&huge));
    wait_until(IO_TIMEOUT, "a job queued", || server.workers().stats().queued == 1);
    const N: usize = 20_000;
    let s = util::connect_from("127.0.0.2".parse().unwrap(), addr);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut flood = Client { writer: s.try_clone().unwrap(), reader: BufReader::new(s) };
    let batch: Vec<u8> = (0..N).flat_map(|_| get("/hash/1")).collect();
    let writer = {
        let mut w = flood.writer.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&batch))
    };
    for i in 0..N {
        assert_eq!(flood.read(false).status, 503, "response {i}");
    }
    writer.join().unwrap().unwrap();
    flood.send(GET);
    assert_hello(&flood.read(false));
}

#[test]
fn one_address_gets_a_share_of_the_workers_not_all() {
    // More workers than one address's share: what it cannot take stays free for the others.
    let workers = http::HASH_JOBS_PER_ADDRESS + 1;
    let server = start_with(ServerConfig::default().threads(1).worker_threads(workers).worker_queue(16));
    let addr = server.local_addr();
    let huge = format!("/hash/{}", head::MAX_HASH);
    let from = "127.0.0.3".parse().unwrap();
    let mut hogs: Vec<Client> = (0..http::HASH_JOBS_PER_ADDRESS)
        .map(|_| {
            let s = util::connect_from(from, addr);
            let mut c = Client { writer: s.try_clone().unwrap(), reader: BufReader::new(s) };
            c.send(&get(&huge));
            c
        })
        .collect();
    wait_until(IO_TIMEOUT, "its jobs running", || server.workers().stats().busy == http::HASH_JOBS_PER_ADDRESS as u64);
    let s = util::connect_from(from, addr);
    let mut one_more = Client { writer: s.try_clone().unwrap(), reader: BufReader::new(s) };
    one_more.send(&get("/hash/10"));
    assert_eq!(one_more.read(false).status, 503, "that address has its share");
    let mut other = Client::new(addr);
    other.send(&get("/hash/10"));
    let r = other.read(false);
    assert_eq!((r.status, r.body.clone()), (200, expected_hash(10)), "another address is served");
    hogs.clear();
}
