//! User code that runs outside any callback — the `Drop` and `Default` of a connection's state,
//! the handler factory — cannot end an IO thread silently: its panic is caught where a
//! callback's would be, or, if the loop cannot go on, the loop's end is visible at once.

mod util;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{
    ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, EpollTPServer, Error, IoHandler, ServerConfig,
    Target,
};
use parking_lot::Mutex;
use util::{connect, echo_round_trip, wait_until};

/// A connection state whose `Drop` panics when it was marked.
#[derive(Default)]
struct Grenade {
    armed: bool,
}

impl Drop for Grenade {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            panic!("Grenade dropped");
        }
    }
}

/// Echoes; arms the state of a connection that sends "arm"; records close reasons.
struct Armed(Arc<Mutex<Vec<String>>>);

impl IoHandler for Armed {
    type ConnState = Grenade;

    fn on_message(&mut self, conn: &mut Conn<'_, Grenade>) {
        if conn.input().as_slice() == b"arm" {
            conn.input().clear();
            conn.state_mut().armed = true;
            conn.close();
            return;
        }
        conn.send_input();
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_, Grenade>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

/// A panic in the `Drop` of a connection's state during teardown is caught like a callback's:
/// the loop, its other connections, its counters and its handle all carry on.
#[test]
fn a_panicking_state_drop_does_not_kill_the_loop() {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let c = closes.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), move || Armed(c.clone())).start().unwrap();
    let mut bystander = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut bystander, b"before"), b"before");
    for _ in 0..2 {
        // Twice: each is caught on its own (two used to end the loop, then the process).
        let mut victim = connect(server.local_addr());
        std::io::Write::write_all(&mut victim, b"arm").unwrap();
        let _ = util::read_to_end(&mut victim);
    }
    wait_until(Duration::from_secs(10), "both panics counted", || server.stats().panics == 2);
    assert_eq!(echo_round_trip(&mut bystander, b"after"), b"after", "the loop still serves");
    assert_eq!(server.stats().connections, 1, "the counters still add up");
    assert!(server.loops()[0].run(|_, _| {}).is_ok());
    drop(bystander);
    wait_until(Duration::from_secs(10), "bystander closed", || server.stats().connections == 0);
    assert_eq!(closes.lock().len(), 3, "on_closed for every connection: {:?}", closes.lock());
    assert_eq!(server.stats().failed_loops, 0);
    server.shutdown();
    server.join().unwrap();
}

/// Every other connection's state panics in `Default`.
struct Fussy;

static MADE: AtomicU64 = AtomicU64::new(0);

/// A state whose `Default` panics on every second connection.
struct Picky;

impl Default for Picky {
    fn default() -> Self {
        if MADE.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            panic!("no state for you");
        }
        Picky
    }
}

impl IoHandler for Fussy {
    type ConnState = Picky;

    fn on_message(&mut self, conn: &mut Conn<'_, Picky>) {
        conn.send_input();
    }
}

/// A panic in `ConnState::default()` refuses that connection (its socket is closed), not the
/// loop.
#[test]
fn a_panicking_state_default_refuses_one_connection() {
    MADE.store(0, Ordering::Relaxed);
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Fussy).start().unwrap();
    let mut refused = 0;
    for i in 0..6 {
        let mut s = connect(server.local_addr());
        if i % 2 == 0 {
            assert_eq!(echo_round_trip(&mut s, b"hi"), b"hi", "connection {i} is served");
        } else {
            let _ = std::io::Write::write_all(&mut s, b"hi");
            match util::read_to_end(&mut s) {
                Ok(bytes) => assert!(bytes.is_empty(), "connection {i} refused, yet answered"),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "connection {i}"),
            }
            refused += 1;
        }
    }
    assert_eq!(refused, 3);
    wait_until(Duration::from_secs(10), "three panics counted", || server.stats().panics == 3);
    assert_eq!(server.stats().failed_loops, 0);
    server.shutdown();
    server.join().unwrap();
}

/// Echoes.
struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// A handler factory that panics on loop 1 ends that loop before it starts, visibly: its
/// handle refuses work, the stats say so, the other loop serves, and `join` reports it.
#[test]
fn a_panicking_handler_factory_ends_its_loop_visibly() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), || {
        if std::thread::current().name() == Some("kingpin-io-1") {
            panic!("no handler for loop 1");
        }
        Echo
    })
    .start()
    .unwrap();
    wait_until(Duration::from_secs(10), "loop 1 marked failed", || server.stats().failed_loops == 1);
    assert!(matches!(server.loops()[1].run(|_, _| {}), Err(Error::LoopStopped)));
    assert!(server.loops()[0].run(|_, _| {}).is_ok());
    for _ in 0..20 {
        let mut s = connect(server.local_addr());
        assert_eq!(echo_round_trip(&mut s, b"served"), b"served");
    }
    server.shutdown();
    let err = server.join().expect_err("join reports the failed loop");
    assert!(err.to_string().contains("factory panicked"), "{err}");
}

/// Connects; closes once the echo is back; records failures.
struct Ping(Arc<Mutex<Vec<String>>>);

impl IoHandler for Ping {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }

    fn on_connect_failed(&mut self, _target: &Target, failure: &ConnectFailure) {
        self.0.lock().push(failure.to_string());
    }
}

/// A client whose loop 1 cannot start still finishes its batch on loop 0: `run_until_idle`
/// returns, with the failure reported.
#[test]
fn a_client_with_a_failed_loop_still_finishes_its_batch() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Echo).start().unwrap();
    let port = server.local_addr().port();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let f = failures.clone();
    let client = EpollTPClient::from_fn(ClientConfig::default().threads(2), move || {
        if std::thread::current().name() == Some("kingpin-client-1") {
            panic!("no handler for loop 1");
        }
        Ping(f.clone())
    });
    let targets = (0..50).map(|_| Target::new("127.0.0.1", port).first_message(b"x".to_vec()));
    let result = client.run_until_idle_timeout(targets, Duration::from_secs(20));
    let err = result.expect_err("the failed loop is reported");
    assert!(err.to_string().contains("factory panicked"), "{err}");
    assert!(failures.lock().is_empty(), "every target connected: {:?}", failures.lock());
}
