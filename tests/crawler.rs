//! The crawler example against local servers: every framing of a response body, a 404, a
//! refused port, a bad URL, a server that accepts and stays silent, one that stalls mid-body —
//! each reported, none stopping the crawl — a crawl stopped early, and the same over TLS
//! (`https://` with the roots it is given, an untrusted server refused).

mod util;

#[path = "../examples/crawler/crawl.rs"]
#[allow(dead_code)]
mod crawl;
#[path = "util/silent.rs"]
mod silent;
#[path = "../examples/common/tls.rs"]
mod tls_config;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, ServerHandle};
use silent::SilentServer;

/// Answers by path, with a different body framing each, then closes.
struct Responder;

impl IoHandler for Responder {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        let Some(end) = conn.input().find(b"\r\n\r\n") else { return };
        let head = String::from_utf8_lossy(&conn.input().as_slice()[..end]).to_string();
        conn.input().advance(end + 4);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let reply: Vec<u8> = match path.as_str() {
            "/" => b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nHello, kingpin!".to_vec(),
            "/chunked" => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec()
            }
            "/close" => {
                let mut r = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
                r.extend_from_slice(&[b'x'; 100_000]);
                r
            }
            "/truncated" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec(),
            "/stall" => {
                // Part of the body, then silence with the connection held open.
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
                return;
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        conn.send(&reply);
        conn.close();
    }
}

fn responder() -> ServerHandle<Responder> {
    EpollTPServer::from_fn(ServerConfig::default().threads(2), || Responder).start().unwrap()
}

/// The [`Responder`] over TLS, with a self-signed certificate for localhost and 127.0.0.1;
/// returns it and the certificate (PEM).
fn tls_responder() -> (ServerHandle<Responder>, String) {
    let (config, pem) = tls_config::self_signed(&[b"http/1.1"]).unwrap();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2).tls(config), || Responder).start().unwrap();
    (server, pem)
}

/// Runs a crawl on a thread of its own and waits for it at most `bound`: a crawl that hangs
/// fails the test instead of holding it.
fn crawl_within(
    urls: &[String],
    settings: crawl::Settings,
    control: &crawl::Control,
    bound: Duration,
) -> Vec<crawl::Report> {
    let (tx, rx) = mpsc::channel();
    let (urls, control) = (urls.to_vec(), control.clone());
    std::thread::spawn(move || {
        let _ = tx.send(crawl::crawl_with(&urls, &settings, &control).unwrap());
    });
    match rx.recv_timeout(bound) {
        Ok(reports) => reports,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the crawl did not end within {bound:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the crawl failed (see its panic above)"),
    }
}

#[test]
fn crawler_reports_every_url_and_goes_on_after_failures() {
    let server = responder();
    let base = format!("http://{}", server.local_addr());
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let urls: Vec<String> = vec![
        format!("{base}/"),
        format!("{base}/chunked"),
        format!("{base}/close"),
        format!("{base}/missing"),
        format!("{base}/truncated"),
        format!("http://{refused}/"),
        "https://example.invalid/".into(),
    ];
    let reports = crawl::crawl(&urls, 2, Duration::from_secs(5), false).unwrap();
    assert_eq!(reports.len(), urls.len());
    let ok = |i: usize| reports[i].outcome.as_ref().unwrap_or_else(|e| panic!("{}: {e}", urls[i])).clone();
    assert_eq!((ok(0).status, ok(0).body_len), (200, 15));
    assert_eq!(ok(0).status_line, "HTTP/1.1 200 OK");
    assert_eq!((ok(1).status, ok(1).body_len), (200, 5));
    assert_eq!((ok(2).status, ok(2).body_len), (200, 100_000));
    assert_eq!((ok(3).status, ok(3).body_len), (404, 0));
    assert!(reports[4].outcome.as_ref().unwrap_err().contains("before the end of the body"), "{:?}", reports[4]);
    assert!(reports[5].outcome.as_ref().unwrap_err().contains("refused"), "{:?}", reports[5]);
    // No TLS roots given: an https URL fails without a connect, saying what is missing.
    assert_eq!(reports[6].outcome.as_ref().unwrap_err(), crawl::NO_TLS_ROOTS, "{:?}", reports[6]);
    for r in &reports {
        eprintln!("{r}");
    }
}

/// A server that accepts and never answers, and one that stalls mid-body, each fail their URL
/// once the idle timeout passes; the other URLs are fetched as usual.
#[test]
fn a_silent_server_fails_its_url_after_the_idle_timeout_and_the_crawl_goes_on() {
    let server = responder();
    let silent = SilentServer::start();
    let urls = vec![
        format!("http://{}/", silent.addr()),
        format!("http://{}/", server.local_addr()),
        format!("http://{}/stall", server.local_addr()),
    ];
    let idle = Duration::from_millis(300);
    let settings = crawl::Settings { idle_timeout: idle, ..crawl::Settings::new(2) };
    let started = Instant::now();
    let reports = crawl_within(&urls, settings, &crawl::Control::default(), Duration::from_secs(20));
    assert!(started.elapsed() >= idle, "failed before the idle timeout: {reports:?}");
    let err = |i: usize| reports[i].outcome.as_ref().unwrap_err().clone();
    assert!(err(0).contains("timed out before a response: the server sent nothing for 300ms"), "{}", err(0));
    assert_eq!(reports[1].outcome.as_ref().unwrap().body_len, 15);
    assert!(err(2).contains("timed out after 9 body bytes"), "{}", err(2));
    assert!(reports.iter().all(|r| r.finished));
}

/// `Control::stop` (Ctrl+C in the crawler) ends a crawl held by a silent server: what finished keeps its
/// result, the rest is reported as not finished.
#[test]
fn a_stop_ends_the_crawl_and_keeps_what_finished() {
    let server = responder();
    let silent = SilentServer::start();
    let urls = vec![format!("http://{}/", server.local_addr()), format!("http://{}/", silent.addr())];
    let control = crawl::Control::default();
    // The default idle timeout (30 s): only the stop can end this crawl in time.
    let (tx, rx) = mpsc::channel();
    let (u, c) = (urls.clone(), control.clone());
    std::thread::spawn(move || {
        let _ = tx.send(crawl::crawl_with(&u, &crawl::Settings::new(2), &c).unwrap());
    });
    silent.wait_accepted(1, Duration::from_secs(10));
    util::wait_until(Duration::from_secs(10), "the good URL is fetched", || control.done() == 1);
    control.stop();
    let reports = rx.recv_timeout(Duration::from_secs(20)).expect("the crawl ended after the stop");
    assert!(control.is_stopped());
    assert_eq!(reports[0].outcome.as_ref().unwrap().status, 200, "{:?}", reports[0]);
    assert!(reports[0].finished);
    assert!(!reports[1].finished, "{:?}", reports[1]);
    assert_eq!(reports[1].outcome.as_ref().unwrap_err(), crawl::NOT_FINISHED);
    assert!(reports[1].to_string().starts_with("NOT FINISHED"));
}

/// A stop before the crawl starts: nothing is fetched, every URL is reported as not finished,
/// and the crawl returns at once.
#[test]
fn a_stop_before_the_start_fetches_nothing() {
    let silent = SilentServer::start();
    let control = crawl::Control::default();
    control.stop();
    let urls = vec![format!("http://{}/", silent.addr()); 3];
    let reports = crawl_within(&urls, crawl::Settings::new(1), &control, Duration::from_secs(20));
    assert!(reports.iter().all(|r| !r.finished), "{reports:?}");
}

/// `https://` URLs are fetched over TLS with the roots of `Settings::tls`, every framing as
/// over plain TCP (a body that runs to the close ends with the server's `close_notify`); a
/// server whose certificate does not chain to those roots fails its URL at the handshake, and
/// the crawl goes on.
#[test]
fn crawler_fetches_https_urls_and_refuses_an_untrusted_server() {
    let (server, pem) = tls_responder();
    let (untrusted, _) = tls_responder();
    let plain = responder();
    let base = format!("https://127.0.0.1:{}", server.local_addr().port());
    let urls: Vec<String> = vec![
        format!("{base}/"),
        format!("{base}/chunked"),
        format!("{base}/close"),
        format!("{base}/missing"),
        format!("{base}/truncated"),
        format!("https://127.0.0.1:{}/", untrusted.local_addr().port()),
        format!("http://{}/", plain.local_addr()),
    ];
    let roots = tls_config::client_config(&pem, &[b"http/1.1"]).unwrap();
    let settings = crawl::Settings { tls: Some(roots), ..crawl::Settings::new(2) };
    let started = Instant::now();
    let reports = crawl_within(&urls, settings, &crawl::Control::default(), Duration::from_secs(20));
    let ok = |i: usize| reports[i].outcome.as_ref().unwrap_or_else(|e| panic!("{}: {e}", urls[i])).clone();
    assert_eq!((ok(0).status, ok(0).body_len), (200, 15));
    assert_eq!((ok(1).status, ok(1).body_len), (200, 5));
    assert_eq!((ok(2).status, ok(2).body_len), (200, 100_000));
    assert_eq!((ok(3).status, ok(3).body_len), (404, 0));
    assert!(reports[4].outcome.as_ref().unwrap_err().contains("before the end of the body"), "{:?}", reports[4]);
    let refused = reports[5].outcome.as_ref().unwrap_err();
    assert!(refused.contains("TLS handshake") && refused.contains("invalid peer certificate"), "{refused}");
    assert_eq!(ok(6).status, 200, "plain http alongside");
    // Refused at the handshake, not after a timeout.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(server.stats().tls_handshakes, 5);
    // The server learns of the refusal from the client's alert, in its own time.
    util::wait_until(Duration::from_secs(10), "the untrusted server to count the failed handshake", || {
        untrusted.stats().tls_handshake_failures == 1
    });
    for r in &reports {
        eprintln!("{r}");
    }
}
