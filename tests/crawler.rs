//! The crawler example against local servers: every framing of a response body, a 404, a
//! refused port, a bad URL — each reported, none stopping the crawl.

mod util;

#[path = "../examples/crawler/crawl.rs"]
#[allow(dead_code)]
mod crawl;

use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};

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
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        conn.send(&reply);
        conn.close();
    }
}

#[test]
fn crawler_reports_every_url_and_goes_on_after_failures() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), || Responder).start().unwrap();
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
    assert!(reports[6].outcome.as_ref().unwrap_err().contains("unsupported scheme"), "{:?}", reports[6]);
    for r in &reports {
        eprintln!("{r}");
    }
}
