//! HTTPS end to end: the `http_server` example serving TLS (`--self-signed`, or `--tls-cert`
//! with `--tls-key`) to real clients — curl and `openssl s_client` over TLS 1.2 and 1.3 with
//! ALPN `http/1.1`, keep-alive, pipelining from a rustls client, the idle timeout — and the
//! `crawler` example fetching `https://` URLs with `--ca-file`, refusing a server it does not
//! trust. Loopback only; every wait is bounded.
//!
//! curl and openssl are skipped, with the reason printed, when they are not installed — unless
//! `KINGPIN_REQUIRE_NETNS` or `CI` is set, when a missing tool fails the test.

mod util;

#[path = "util/bin.rs"]
mod bin;
#[path = "../examples/http_server/head.rs"]
#[allow(dead_code)]
mod head;
#[path = "../examples/http_server/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../examples/http_server/request.rs"]
#[allow(dead_code)]
mod request;
#[path = "../examples/common/tls.rs"]
mod tls_config;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bin::{example, wait_bounded, KillOnDrop};
use kingpin::{EpollTPServer, IdleTimeouts, ServerConfig};
use util::{connect, IO_TIMEOUT};

/// The longest any process run here may take before the test kills it and fails.
const BOUND: Duration = Duration::from_secs(60);

/// How a finished process ended and what it printed.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end with `stdin` as its input, at most [`BOUND`]; `Err` if it cannot be
/// started.
fn run(cmd: &mut Command, stdin: &[u8]) -> io::Result<Ran> {
    let what = format!("{cmd:?}");
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // A child that exits without reading all of it makes the write fail: that is its business.
    let writer = std::thread::spawn(move || drop(input.write_all(&stdin)));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, BOUND, &what);
    writer.join().unwrap();
    Ok(Ran { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() })
}

/// Whether a missing client tool fails the test rather than skipping it.
fn tools_required() -> bool {
    std::env::var_os("KINGPIN_REQUIRE_NETNS").is_some() || std::env::var_os("CI").is_some()
}

/// The version line of `tool`, or `None` (printed) when it cannot run here and
/// [`tools_required`] is false.
fn tool(tool: &str) -> Option<String> {
    let arg = if tool == "openssl" { "version" } else { "--version" };
    let why = match run(Command::new(tool).arg(arg), b"") {
        Ok(ran) if ran.status.success() => return Some(ran.stdout.lines().next().unwrap_or_default().to_string()),
        Ok(ran) => format!("`{tool} {arg}` failed ({}): {}", ran.status, ran.stderr.trim()),
        Err(e) if e.kind() == ErrorKind::NotFound => format!("{tool} is not on PATH (apt-get install -y {tool})"),
        Err(e) => format!("cannot run {tool}: {e}"),
    };
    assert!(!tools_required(), "{why}; KINGPIN_REQUIRE_NETNS or CI is set, so {tool} is required");
    println!("test skipped: {why}");
    None
}

/// The http_server example serving HTTPS on a free loopback port, killed when dropped.
struct Server {
    _child: KillOnDrop,
    addr: SocketAddr,
    /// The certificate clients trust (PEM file).
    pem: PathBuf,
    _lines: Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// With a self-signed certificate written into a temporary directory; checks the two lines
    /// it prints (where it listens, how to trust it).
    fn self_signed() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("server.pem");
        let out = pem.to_str().unwrap();
        let (child, addr, lines) = start_http_server(&["--self-signed", "--self-signed-out", out]);
        let pem = pem.canonicalize().expect("the certificate is written");
        let hint = next_line(&lines, "the curl line");
        assert_eq!(
            hint,
            format!(
                "self-signed certificate in {0}; trust it with: curl --cacert {0} https://localhost:{1}/",
                pem.display(),
                addr.port()
            )
        );
        Server { _child: child, addr, pem, _lines: lines, _dir: dir }
    }

    /// With `--tls-cert` and `--tls-key`: a certificate made here and written to files.
    fn from_files() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).unwrap();
        let (pem, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        std::fs::write(&key, signing_key.serialize_pem()).unwrap();
        let (child, addr, lines) =
            start_http_server(&["--tls-cert", pem.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
        Server { _child: child, addr, pem, _lines: lines, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    fn pem_text(&self) -> String {
        std::fs::read_to_string(&self.pem).unwrap()
    }
}

/// Starts http_server on 127.0.0.1 with `args`; returns it, the address of its first line and
/// the rest of its stdout, line by line.
fn start_http_server(args: &[&str]) -> (KillOnDrop, SocketAddr, Receiver<String>) {
    let mut cmd = Command::new(example("http_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--threads", "2"]).args(args).env("KINGPIN_LOG", "warn");
    let mut child = KillOnDrop(Some(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap()));
    let stdout = child.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = next_line(&lines, "the listening line");
    let addr = first
        .strip_prefix("http_server listening on https://")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("http_server printed no https address: {first:?}"));
    (child, addr, lines)
}

/// The next line the server prints, waiting at most [`BOUND`].
fn next_line(lines: &Receiver<String>, what: &str) -> String {
    lines.recv_timeout(BOUND).unwrap_or_else(|e| panic!("http_server printed no {what}: {e}"))
}

/// Runs curl verbosely against `server`, trusting its certificate, with `localhost` pinned to
/// 127.0.0.1 (where it listens).
fn curl(server: &Server, args: &[&str]) -> Ran {
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-v", "--max-time", &IO_TIMEOUT.as_secs().to_string(), "--resolve", &resolve, "--cacert"])
        .arg(&server.pem)
        .args(args);
    let ran = run(&mut cmd, b"").expect("run curl");
    assert!(ran.status.success(), "curl {args:?}: {ran:?}");
    ran
}

/// What `/hash/N` answers, worked out here.
fn expected_hash(n: u64) -> String {
    format!("{:016x}\n", http::hash_pattern(n, &kingpin::CancelToken::new()).unwrap())
}

#[test]
fn curl_gets_pages_over_tls_1_2_and_1_3_with_alpn() {
    let Some(version) = tool("curl") else { return };
    println!("with {version}");
    let server = Server::self_signed();
    let url = server.url("/");
    for (flags, protocol) in [(&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"), (&["--tlsv1.3"][..], "TLSv1.3")] {
        let ran = curl(&server, &[flags, &[url.as_str()]].concat());
        assert_eq!(ran.stdout, "Hello, kingpin!", "{protocol}: {ran:?}");
        for line in [&format!("SSL connection using {protocol} / "), "ALPN: server accepted http/1.1"] {
            assert!(ran.stderr.contains(line), "{protocol}: no {line:?} in {}", ran.stderr);
        }
        assert!(ran.stderr.contains("SSL certificate verify ok."), "{}", ran.stderr);
        // HEAD: the headers and no body.
        let ran = curl(&server, &[flags, &["-I", url.as_str()]].concat());
        assert!(ran.stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{ran:?}");
        assert!(ran.stdout.contains("\r\nContent-Length: 15\r\n") && ran.stdout.ends_with("\r\n\r\n"), "{ran:?}");
    }
}

#[test]
fn curl_keeps_one_tls_connection_for_several_urls() {
    if tool("curl").is_none() {
        return;
    }
    let server = Server::self_signed();
    let ran = curl(&server, &[&server.url("/"), &server.url("/missing"), &server.url("/hash/1000000")]);
    assert_eq!(ran.stdout, format!("Hello, kingpin!Not Found\n{}", expected_hash(1_000_000)), "{ran:?}");
    assert_eq!(ran.stderr.matches("Re-using existing connection").count(), 2, "{}", ran.stderr);
    assert_eq!(ran.stderr.matches("* Connected to ").count(), 1, "{}", ran.stderr);
    assert_eq!(ran.stderr.matches("ALPN: server accepted http/1.1").count(), 1, "{}", ran.stderr);
}

/// `--tls-cert` and `--tls-key` serve the certificate of the files.
#[test]
fn curl_trusts_the_certificate_of_tls_cert() {
    if tool("curl").is_none() {
        return;
    }
    let server = Server::from_files();
    let ran = curl(&server, &[&server.url("/")]);
    assert_eq!(ran.stdout, "Hello, kingpin!", "{ran:?}");
    assert!(ran.stderr.contains("ALPN: server accepted http/1.1"), "{}", ran.stderr);
    // Trusting another certificate instead, curl refuses the server (60: the peer's
    // certificate cannot be verified).
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, tls_config::self_signed(&[]).unwrap().1).unwrap();
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--resolve", &resolve, "--cacert"]).arg(&other).arg(server.url("/"));
    let ran = run(&mut cmd, b"").unwrap();
    assert_eq!(ran.status.code(), Some(60), "{ran:?}");
}

#[test]
fn openssl_s_client_over_tls_1_2_and_1_3_with_keep_alive() {
    let Some(version) = tool("openssl") else { return };
    println!("with {version}");
    let server = Server::self_signed();
    let connect = server.addr.to_string();
    // Two requests on one connection: the first keeps it, the second closes it (and so ends
    // s_client, which reads on after its input ends with -ign_eof).
    let requests = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n\
                     GET /missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &connect, "-servername", "localhost", "-alpn", "http/1.1"])
            .args(["-verify_return_error", "-verify_hostname", "localhost", "-ign_eof", flag, "-CAfile"])
            .arg(&server.pem);
        let ran = run(&mut cmd, requests).expect("run openssl");
        assert!(ran.status.success(), "{protocol}: {ran:?}");
        let out = &ran.stdout;
        for line in [
            "Verify return code: 0 (ok)",
            "ALPN protocol: http/1.1",
            "Verified peername: localhost",
            &format!("New, {protocol}, Cipher is "),
        ] {
            assert!(out.contains(line), "{protocol}: no {line:?} in {out}");
        }
        let first = out.find("HTTP/1.1 200 OK\r\n").unwrap_or_else(|| panic!("{protocol}: no 200 in {out}"));
        let second = out.find("HTTP/1.1 404 Not Found\r\n").unwrap_or_else(|| panic!("{protocol}: no 404 in {out}"));
        assert!(first < second, "{protocol}: answers out of order: {out}");
        assert!(out[first..second].contains("\r\n\r\nHello, kingpin!"), "{protocol}: {out}");
        assert!(!out[first..second].contains("Connection: close"), "{protocol}: {out}");
        assert!(out[second..].contains("\r\nConnection: close\r\n"), "{protocol}: {out}");
        assert!(out[second..].contains("\r\n\r\nNot Found\n"), "{protocol}: {out}");
    }
}

/// A rustls client config trusting `pem`, offering ALPN http/1.1, speaking only `version`.
fn client_config(pem: &str, version: &'static rustls::SupportedProtocolVersion) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A TLS connection to `addr` as `localhost`, every read and write bounded by the socket's
/// timeouts.
fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> BufReader<TlsStream> {
    let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, connect(addr)))
}

/// Reads one response (not to a HEAD): status, whether it closes, body.
fn read_response(r: &mut impl BufRead) -> (u16, bool, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line.strip_prefix("HTTP/1.1 ").and_then(|s| s.get(..3)).and_then(|s| s.parse().ok());
    let status = status.unwrap_or_else(|| panic!("status line {line:?}"));
    let (mut len, mut closes) = (None, false);
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        assert!(line.ends_with("\r\n"), "header line {line:?}");
        if line == "\r\n" {
            break;
        }
        let (name, value) = line.trim_end().split_once(':').unwrap_or_else(|| panic!("header {line:?}"));
        if name.eq_ignore_ascii_case("content-length") {
            len = Some(value.trim().parse::<usize>().unwrap());
        } else if name.eq_ignore_ascii_case("connection") {
            closes = value.trim().eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; len.expect("Content-Length")];
    r.read_exact(&mut body).expect("body");
    (status, closes, body)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// Requests written in one write come back in order over TLS 1.2 and 1.3, then more on the
/// same connection, then `Connection: close` ends it with `close_notify` (a clean end of stream
/// for rustls, not a truncation).
#[test]
fn pipelined_requests_over_tls_are_answered_in_order() {
    let server = Server::self_signed();
    let pem = server.pem_text();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut c = tls_connect(server.addr, client_config(&pem, version));
        let batch = [get("/"), get("/missing"), get("/hash/1000000")].concat();
        let tls = c.get_mut();
        tls.write_all(&batch).and_then(|()| tls.flush()).expect("write");
        assert_eq!(read_response(&mut c), (200, false, b"Hello, kingpin!".to_vec()));
        assert_eq!(read_response(&mut c), (404, false, b"Not Found\n".to_vec()));
        assert_eq!(read_response(&mut c), (200, false, expected_hash(1_000_000).into_bytes()));
        let conn = &c.get_ref().conn;
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(conn.protocol_version(), Some(version.version));

        // Many more than one TLS record's worth, in one write.
        const N: usize = 2_000;
        let batch: Vec<u8> = (0..N).flat_map(|i| get(if i % 2 == 0 { "/" } else { "/x" })).collect();
        assert!(batch.len() > 4 * 16_384);
        let tls = c.get_mut();
        tls.write_all(&batch).and_then(|()| tls.flush()).expect("write");
        for i in 0..N {
            assert_eq!(read_response(&mut c).0, if i % 2 == 0 { 200 } else { 404 }, "response {i}");
        }

        let tls = c.get_mut();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("write");
        assert_eq!(read_response(&mut c), (200, true, b"Hello, kingpin!".to_vec()));
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("close_notify, then the end of stream");
        assert!(rest.is_empty(), "{rest:?}");
    }
}

/// The handler's idle timeout closes a silent TLS connection as it does a plain one; a
/// connection waiting for its `/hash` answer is kept through it.
#[test]
fn the_idle_timeout_closes_a_silent_tls_connection_but_not_one_waiting_for_a_hash() {
    let (config, pem) = tls_config::self_signed(&[b"http/1.1"]).unwrap();
    let idle = Duration::from_millis(300);
    let server = EpollTPServer::from_fn(
        ServerConfig::default().threads(1).idle_timeouts(IdleTimeouts::read(idle)).tls(config),
        http::HttpHandler::default,
    )
    .start()
    .unwrap();
    let mut c = tls_connect(server.local_addr(), client_config(&pem, &rustls::version::TLS13));
    // The server's last read comes after this: its idle timeout cannot end before `idle` from
    // here.
    let sent = Instant::now();
    c.get_mut().write_all(&get("/")).expect("write");
    assert_eq!(read_response(&mut c).0, 200);
    let mut rest = Vec::new();
    // The idle close is immediate (no close_notify, as a plain connection gets no lingering
    // close): rustls calls that an unexpected end of stream.
    match c.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}"),
    }
    assert!(rest.is_empty() && sent.elapsed() >= idle, "{rest:?} after {:?}", sent.elapsed());

    // A hash that takes far longer than the idle timeout (1 TiB): the connection stays open.
    let mut c = tls_connect(server.local_addr(), client_config(&pem, &rustls::version::TLS12));
    c.get_mut().write_all(&get(&format!("/hash/{}", head::MAX_HASH))).expect("write");
    c.get_ref().sock.set_read_timeout(Some(idle * 4)).unwrap();
    let mut b = [0u8; 1];
    let e = c.read(&mut b).expect_err("no answer yet, and no close");
    assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{e}");
    assert_eq!(server.workers().stats().busy, 1);
    drop(c); // stops the hash
    util::wait_until(IO_TIMEOUT, "the hash stopped", || server.workers().stats().busy == 0);
    assert_eq!(server.stats().tls_handshakes, 2);
    server.shutdown();
    server.join().unwrap();
}

/// Runs the crawler example (`exe`) with `args`.
fn crawler(exe: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(exe);
    cmd.args(args).env("KINGPIN_LOG", "warn");
    run(&mut cmd, b"").expect("run the crawler")
}

/// The line of the crawler's output about `url`.
fn line_of<'a>(ran: &'a Ran, url: &str) -> &'a str {
    ran.stdout.lines().find(|l| l.ends_with(url) || l.contains(&format!("{url}  ("))).unwrap_or_else(|| {
        panic!("no line for {url} in {ran:?}");
    })
}

/// Whether `localhost` resolves to 127.0.0.1 first here (the crawler tries the first address
/// only, and the server listens on 127.0.0.1).
fn localhost_is_127_0_0_1() -> bool {
    ("localhost", 0).to_socket_addrs().ok().and_then(|mut a| a.next()).is_some_and(|a| a.ip().is_ipv4())
}

#[test]
fn crawler_fetches_https_with_its_ca_file() {
    let server = Server::self_signed();
    let port = server.addr.port();
    let pem = server.pem.to_str().unwrap();
    let mut urls = vec![
        format!("https://127.0.0.1:{port}/"),
        format!("https://127.0.0.1:{port}/missing"),
        format!("https://127.0.0.1:{port}/hash/1000"),
    ];
    if localhost_is_127_0_0_1() {
        urls.push(format!("https://localhost:{port}/"));
    } else {
        println!("localhost does not resolve to 127.0.0.1 first here: crawling by address only");
    }
    let args: Vec<&str> = ["--ca-file", pem].into_iter().chain(urls.iter().map(String::as_str)).collect();
    let ran = crawler(&example("crawler"), &args);
    assert!(ran.status.success(), "{ran:?}");
    assert!(line_of(&ran, &urls[0]).starts_with("HTTP/1.1 200 OK "), "{ran:?}");
    assert!(line_of(&ran, &urls[0]).contains(" 15 B "), "{ran:?}");
    assert!(line_of(&ran, &urls[1]).starts_with("HTTP/1.1 404 Not Found "), "{ran:?}");
    assert!(line_of(&ran, &urls[2]).contains(" 17 B "), "{ran:?}");
    if let Some(url) = urls.get(3) {
        assert!(line_of(&ran, url).starts_with("HTTP/1.1 200 OK "), "{ran:?}");
    }
    let n = urls.len();
    assert!(ran.stdout.ends_with(&format!("{n} fetched ({} with a 2xx status), 0 failed\n", n - 1)), "{ran:?}");
}

#[test]
fn crawler_refuses_a_server_it_does_not_trust_and_needs_a_ca_file_for_https() {
    let server = Server::self_signed();
    let port = server.addr.port();
    let url = format!("https://127.0.0.1:{port}/");
    // Another certificate, with the same names: the server's does not chain to it.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, tls_config::self_signed(&[]).unwrap().1).unwrap();
    let exe = example("crawler");
    let started = Instant::now();
    let ran = crawler(&exe, &["--ca-file", other.to_str().unwrap(), &url]);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    let line = line_of(&ran, &url);
    assert!(line.starts_with("ERROR"), "{ran:?}");
    assert!(line.contains("TLS handshake") && line.contains("invalid peer certificate"), "{ran:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused only after {:?}", started.elapsed());
    assert!(ran.stdout.ends_with("0 fetched (0 with a 2xx status), 1 failed\n"), "{ran:?}");

    // No --ca-file: the URL fails, saying what is missing.
    let ran = crawler(&exe, &[&url]);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    assert!(line_of(&ran, &url).contains("https needs a root certificate to trust: give --ca-file FILE (PEM)"));

    // A --ca-file that is not there, or holds no certificate: one line, before any crawling.
    let missing = dir.path().join("missing.pem");
    let ran = crawler(&exe, &["--ca-file", missing.to_str().unwrap(), &url]);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!("crawler: --ca-file {}: cannot read it: no such file or directory\n", missing.display())
    );
    assert_eq!(ran.stdout, "", "{ran:?}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let ran = crawler(&exe, &["--ca-file", empty.to_str().unwrap(), &url]);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    assert_eq!(ran.stderr, format!("crawler: --ca-file {}: no root certificate given\n", empty.display()));
}

/// TLS flags that do not make sense together, or files that cannot serve, stop http_server
/// with one line and status 1, before it listens.
#[test]
fn http_server_refuses_bad_tls_flags_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--tls-cert", junk], "--tls-cert needs --tls-key FILE (the certificate's private key, PEM)".into()),
        (vec!["--tls-key", junk], "--tls-key needs --tls-cert FILE (the certificate chain, PEM)".into()),
        (
            vec!["--tls-cert", missing, "--tls-key", junk],
            format!("--tls-cert {missing}: cannot read it: no such file or directory"),
        ),
        (
            vec!["--tls-cert", junk, "--tls-key", junk],
            format!("{junk}: no certificate in it (PEM \"BEGIN CERTIFICATE\" expected)"),
        ),
        (
            vec!["--self-signed", "--tls-cert", junk],
            "--self-signed makes its own certificate: give it or --tls-cert/--tls-key, not both".into(),
        ),
        (vec!["--self-signed-out", missing], "--self-signed-out goes with --self-signed".into()),
    ];
    for (args, line) in cases {
        let mut cmd = Command::new(example("http_server"));
        cmd.args(["--addr", "127.0.0.1:0", "--threads", "1"]).args(&args).env("KINGPIN_LOG", "warn");
        let ran = run(&mut cmd, b"").unwrap();
        assert_eq!(ran.status.code(), Some(1), "{args:?}: {ran:?}");
        assert_eq!(ran.stderr, format!("http_server: {line}\n"), "{args:?}");
        assert_eq!(ran.stdout, "", "{args:?}");
    }
    assert!(!Path::new(missing).exists(), "nothing written");
}
