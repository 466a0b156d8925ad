//! How the IO threads share the accepting of short-lived connections: with the default accept
//! mutex, no thread takes more than twice its fair share, whether the connections come one
//! after another or from several clients at once. The other accept strategies serve the same
//! load correctly (their balance is the kernel's; `make bench` compares the three).

mod util;

use std::time::Duration;

use kingpin::{AcceptStrategy, Conn, EpollTPServer, IoHandler, ServerConfig, ServerHandle};
use util::{connect, echo_round_trip, wait_until};

const THREADS: usize = 4;
const CYCLES: usize = 2000;

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

fn start(strategy: AcceptStrategy) -> ServerHandle<Echo> {
    EpollTPServer::from_fn(ServerConfig::default().threads(THREADS).accept_strategy(strategy), || Echo).start().unwrap()
}

/// `cycles` connect–echo–close cycles from each of `clients` threads at once.
fn churn(server: &ServerHandle<Echo>, clients: usize, cycles: usize) {
    let addr = server.local_addr();
    std::thread::scope(|s| {
        for c in 0..clients {
            s.spawn(move || {
                for i in 0..cycles {
                    let mut conn = connect(addr);
                    let msg = format!("{c}:{i}");
                    assert_eq!(echo_round_trip(&mut conn, msg.as_bytes()), msg.as_bytes());
                }
            });
        }
    });
    let total = (clients * cycles) as u64;
    wait_until(Duration::from_secs(20), "all closed", || {
        let st = server.stats();
        st.accepted == total && st.connections == 0
    });
}

/// Connections accepted by each IO thread.
fn per_thread(server: &ServerHandle<Echo>) -> Vec<u64> {
    server.loop_stats().iter().map(|s| s.accepted).collect()
}

fn assert_fair(what: &str, counts: &[u64]) {
    let total: u64 = counts.iter().sum();
    let fair = total / counts.len() as u64;
    eprintln!("{what}: accepted per thread {counts:?} (fair share {fair})");
    assert!(counts.iter().all(|&n| n <= 2 * fair), "{what}: {counts:?}, more than twice the fair share {fair}");
}

#[test]
fn mutex_spreads_sequential_short_connections() {
    let server = start(AcceptStrategy::Mutex);
    churn(&server, 1, CYCLES);
    assert_fair("sequential", &per_thread(&server));
}

#[test]
fn mutex_spreads_concurrent_short_connections() {
    let server = start(AcceptStrategy::Mutex);
    churn(&server, 4, CYCLES / 4);
    assert_fair("4 concurrent clients", &per_thread(&server));
}

#[test]
fn epoll_exclusive_serves_short_connections() {
    let server = start(AcceptStrategy::EpollExclusive);
    churn(&server, 4, 250);
    eprintln!("EPOLLEXCLUSIVE, 4 concurrent clients: {:?}", per_thread(&server));
    let mut s = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut s, b"still"), b"still");
}

#[test]
fn reuseport_serves_short_connections_on_every_thread() {
    let server = start(AcceptStrategy::ReusePort);
    churn(&server, 4, 250);
    let counts = per_thread(&server);
    eprintln!("SO_REUSEPORT, 4 concurrent clients: {counts:?}");
    // The kernel hashes each connection's addresses: 1,000 of them reach every listener.
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}

/// Every strategy stops cleanly: open connections are closed by the shutdown, and the
/// address refuses new ones afterwards.
#[test]
fn every_strategy_shuts_down_cleanly() {
    for strategy in [AcceptStrategy::Mutex, AcceptStrategy::EpollExclusive, AcceptStrategy::ReusePort] {
        let server = start(strategy);
        let addr = server.local_addr();
        let mut open: Vec<_> = (0..20).map(|_| connect(addr)).collect();
        for s in &mut open {
            assert_eq!(echo_round_trip(s, b"hi"), b"hi", "{strategy:?}");
        }
        server.shutdown();
        for mut s in open.drain(..) {
            assert_eq!(util::read_to_end(&mut s).unwrap_or_default(), b"", "{strategy:?}: closed by the shutdown");
        }
        server.join().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err(), "{strategy:?}: still listening after shutdown");
    }
}
