//! Graceful shutdown: stop accepting, drain pending output, close, join.

mod util;

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, pattern, read_to_end, wait_until};

const PAYLOAD: usize = 8 << 20;

/// Queues 8 MiB on connect; records close reasons.
struct Flood(Arc<Mutex<Vec<String>>>);

impl IoHandler for Flood {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.send(&pattern(PAYLOAD, 1));
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

/// Output still queued when shutdown begins is written before the connection closes.
#[test]
fn shutdown_drains_pending_output() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), move || Flood(r.clone())).start().unwrap();
    let mut clients: Vec<_> = (0..4).map(|_| connect(server.local_addr())).collect();
    wait_until(Duration::from_secs(10), "all connected", || server.stats().connections == 4);
    server.shutdown();
    // Nobody has read yet: the kernel buffers hold a fraction; the rest waits in the server.
    let joined = std::thread::spawn(move || server.join());
    for c in &mut clients {
        let got = read_to_end(c).unwrap();
        assert_eq!(got.len(), PAYLOAD);
        assert!(got == pattern(PAYLOAD, 1), "drained bytes are intact");
    }
    joined.join().unwrap().unwrap();
    assert_eq!(*reasons.lock(), vec![CloseReason::Shutdown.to_string(); 4]);
}

/// A peer that never reads cannot hold shutdown past its deadline: it is force-closed, and
/// the callback says so.
#[test]
fn shutdown_deadline_forces_close() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), move || Flood(r.clone())).start().unwrap();
    let mut stalled = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connected", || server.stats().connections == 1);
    let started = Instant::now();
    server.shutdown_handle().shutdown_with_timeout(Duration::from_millis(200));
    server.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(*reasons.lock(), vec![CloseReason::ShutdownForced.to_string()]);
    let mut buf = Vec::new();
    let _ = stalled.read_to_end(&mut buf); // whatever the kernel held, then end or reset
    assert!(buf.len() < PAYLOAD);
}

/// Once shutdown begins, new connections are refused at once — even while existing ones are
/// still draining — instead of waiting in the queue.
#[test]
fn shutdown_stops_accepting_first() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), move || Flood(r.clone())).start().unwrap();
    let addr = server.local_addr();
    let mut draining = connect(addr);
    wait_until(Duration::from_secs(10), "connected", || server.stats().connections == 1);
    server.shutdown();
    wait_until(Duration::from_secs(10), "new connections refused", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    // (Probes that raced the asynchronous shutdown may have been accepted; none after.)
    let accepted = server.stats().accepted;
    for _ in 0..5 {
        let e = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    assert_eq!(server.stats().accepted, accepted, "nothing accepted once the listener stopped");
    assert_eq!(read_to_end(&mut draining).unwrap().len(), PAYLOAD, "the draining connection still completes");
    server.join().unwrap();
}

/// `shutdown` may be called from any thread, many times.
#[test]
fn shutdown_is_idempotent_from_any_thread() {
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(2), || Flood(Default::default())).start().unwrap();
    let stop = server.shutdown_handle();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = stop.clone();
            std::thread::spawn(move || s.shutdown())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.shutdown();
    server.join().unwrap();
}
