//! The lingering close: `Conn::close()` on a connection whose peer may still send shuts the
//! write side, drops what arrives until the peer's end or the linger timeout, and only then
//! closes — so a client that sent before reading still gets its whole answer, not a reset.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, wait_until};

/// Greets every connection and closes once the greeting is written (the quick start).
struct Hello(Arc<Mutex<Vec<String>>>);

impl IoHandler for Hello {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.send(b"Hello, kingpin!\n");
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

fn hello_server(config: ServerConfig) -> (kingpin::ServerHandle<Hello>, Arc<Mutex<Vec<String>>>) {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let c = closes.clone();
    (EpollTPServer::from_fn(config, move || Hello(c.clone())).start().unwrap(), closes)
}

/// 300 clients each send a line before reading: every one reads the whole greeting and a clean
/// end of stream (before: nearly all got the greeting, then ECONNRESET).
#[test]
fn clients_that_send_first_get_the_answer_not_a_reset() {
    let (server, closes) = hello_server(ServerConfig::default().threads(2));
    let addr = server.local_addr();
    let results: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(move || {
                    (0..50)
                        .map(|_| {
                            let mut s = connect(addr);
                            s.write_all(b"hello, server\n")?;
                            let mut got = Vec::new();
                            s.read_to_end(&mut got)?;
                            Ok(got)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let resets = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(resets, 0, "{resets} of 300 clients saw an error, e.g. {:?}", results.iter().find(|r| r.is_err()));
    assert!(results.iter().all(|r| r.as_deref().ok() == Some(&b"Hello, kingpin!\n"[..])));
    wait_until(Duration::from_secs(10), "all closed", || closes.lock().len() == 300);
    assert!(closes.lock().iter().all(|r| r == "closed locally"));
}

/// A peer that keeps sending and never closes is cut off after the linger timeout; it read the
/// greeting and the end of stream first.
#[test]
fn lingering_ends_at_the_timeout() {
    let config = ServerConfig::default().threads(1).linger_timeout(Duration::from_millis(300));
    let (server, closes) = hello_server(config);
    let mut s = connect(server.local_addr());
    s.write_all(b"more").unwrap();
    let mut greeting = [0u8; 16];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"Hello, kingpin!\n");
    let mut rest = [0u8; 1];
    assert_eq!(s.read(&mut rest).unwrap(), 0, "end of stream: the write side is shut");
    let started = Instant::now();
    // Still sending: the server drops it while lingering, then closes.
    while closes.lock().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "the linger never ended");
        let _ = s.write_all(&[0u8; 1000]);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(started.elapsed() >= Duration::from_millis(200), "closed before the timeout");
    assert_eq!(*closes.lock(), ["closed locally"]);
    assert_eq!(server.stats().connections, 0);
}

/// A peer that closes after reading ends the linger at once.
#[test]
fn the_peers_end_ends_the_linger() {
    let config = ServerConfig::default().threads(1).linger_timeout(Duration::from_secs(30));
    let (server, closes) = hello_server(config);
    let mut s = connect(server.local_addr());
    s.write_all(b"x").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    drop(s);
    wait_until(Duration::from_secs(5), "closed well before the 30 s linger", || closes.lock().len() == 1);
}

/// `linger_timeout(0)` closes at once, as `force_close` does.
#[test]
fn no_linger_closes_at_once() {
    let config = ServerConfig::default().threads(1).linger_timeout(Duration::ZERO);
    let (server, closes) = hello_server(config);
    let _s = connect(server.local_addr());
    wait_until(Duration::from_secs(5), "closed without waiting for the peer", || closes.lock().len() == 1);
}
