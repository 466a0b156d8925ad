//! Memory under peers that never read, with the default settings: the server's resident memory
//! stays bounded while they push, and returns once they leave. The server runs in a child
//! process (the test binary re-executed) so that its RSS is its own.

mod util;

#[path = "util/child.rs"]
mod child;

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use child::ChildProc;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};

const WAIT: Duration = Duration::from_secs(30);

/// Peers in the test (the finding was 1,500; fewer here, with the bounds scaled by the same
/// factor, keeps the suite quick on a 2-core machine).
const PEERS: usize = 500;
/// Resident memory the server may reach while `PEERS` peers push and never read: 300 MiB for
/// 1,500 peers, scaled.
const MAX_RSS_MIB: u64 = 300 * PEERS as u64 / 1500;
/// How close to its starting figure the server's resident memory must come back within 10 s
/// of the peers leaving: 64 MiB for 1,500 peers, scaled.
const RETURN_MIB: u64 = 64 * PEERS as u64 / 1500;

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Child role `default_echo`: `echo_server` as a user who never touches the config runs it.
/// Reports `ready`; answers each stdin line with its `rss` and connection count.
#[test]
fn child_default_echo() {
    if child::role().as_deref() != Some("default_echo") {
        return;
    }
    child::watchdog(Duration::from_secs(120));
    let server = EpollTPServer::from_fn(ServerConfig::default(), || Echo).start().unwrap();
    child::report("ready", &[("addr", server.local_addr().to_string())]);
    let commands = child::stdin_lines();
    while commands.recv().is_ok() {
        let s = server.stats();
        child::report(
            "rss",
            &[
                ("kib", rss_kib().to_string()),
                ("connections", s.connections.to_string()),
                ("buffered", s.buffered_bytes.to_string()),
            ],
        );
    }
    server.shutdown();
    server.join().unwrap();
}

/// Asks the child for its figures.
fn figures(server: &mut ChildProc) -> (u64, u64, u64) {
    server.send("rss");
    let r = server.expect("rss", WAIT);
    (r.get("kib"), r.get("connections"), r.get("buffered"))
}

/// Peers that push and never read hold the server's memory to a bound (the high water mark
/// pauses each after a little output), and the memory comes back when they leave.
#[test]
fn never_reading_peers_hold_bounded_memory_that_comes_back() {
    let mut server = ChildProc::spawn("child_default_echo", "default_echo", &[], &[]);
    let addr: SocketAddr = server.expect("ready", WAIT).get("addr");
    // Warm up once, so the baseline includes what any served connection leaves behind.
    let mut warm = util::connect(addr);
    assert_eq!(util::echo_round_trip(&mut warm, &[1; 100_000]), vec![1; 100_000]);
    drop(warm);
    std::thread::sleep(Duration::from_millis(200));
    let (rss0, _, _) = figures(&mut server);

    let mut peers: Vec<TcpStream> = (0..PEERS)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    // Push until no peer can write any more: the server stopped reading from all of them.
    let chunk = vec![b'x'; 64 << 10];
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut pushed: u64 = 0;
    while last_progress.elapsed() < Duration::from_millis(1500) {
        assert!(started.elapsed() < Duration::from_secs(60), "the server kept reading for a minute");
        let mut progressed = false;
        for p in &mut peers {
            match p.write(&chunk) {
                Ok(n) => {
                    pushed += n as u64;
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("peer write: {e}"),
            }
        }
        if progressed {
            last_progress = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (rss_full, conns, buffered) = figures(&mut server);
    let held_mib = rss_full.saturating_sub(rss0) / 1024;
    eprintln!(
        "{PEERS} never-reading peers pushed {} MiB; server RSS {} → {} MiB (+{held_mib} MiB), {} MiB in buffers",
        pushed >> 20,
        rss0 / 1024,
        rss_full / 1024,
        buffered >> 20
    );
    assert_eq!(conns, PEERS as u64);
    assert!(rss_full / 1024 < MAX_RSS_MIB, "server RSS {} MiB with {PEERS} never-reading peers", rss_full / 1024);

    drop(peers);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (rss, conns, _) = figures(&mut server);
        if conns == 0 && rss <= rss0 + RETURN_MIB * 1024 {
            eprintln!("after the peers left: RSS {} MiB (start {} MiB)", rss / 1024, rss0 / 1024);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after the peers left: RSS {} MiB, started at {} MiB, {conns} connections",
            rss / 1024,
            rss0 / 1024
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.close_stdin();
    assert!(server.wait(WAIT).success());
}
