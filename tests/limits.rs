//! Hardening: idle timeouts, backpressure, output and connection limits, the memory budget.
//! Each test names what it proves.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{CloseReason, Conn, EpollTPServer, IdleAction, IdleKind, IdleTimeouts, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, echo_round_trip, pattern, read_n, wait_until};

type Reasons = Arc<Mutex<Vec<String>>>;

/// Echoes, and records close reasons.
struct Echo(Reasons);

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

fn echo_server(config: ServerConfig) -> (kingpin::ServerHandle<Echo>, Reasons) {
    let reasons = Reasons::default();
    let r = reasons.clone();
    (EpollTPServer::from_fn(config, move || Echo(r.clone())).start().unwrap(), reasons)
}

/// A slowloris-style peer — a partial request, then silence — is dropped by the read-idle
/// timeout, while a peer that keeps talking stays.
#[test]
fn slowloris_is_dropped_by_read_idle_timeout() {
    // The chatty peer talks every ~50 ms, ten times more often than the timeout allows.
    let config = ServerConfig::default().threads(1).idle_timeouts(IdleTimeouts::read(Duration::from_millis(500)));
    let (server, reasons) = echo_server(config);
    let mut slow = connect(server.local_addr());
    let mut chatty = connect(server.local_addr());
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        assert_eq!(echo_round_trip(&mut chatty, b"ping"), b"ping");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until(Duration::from_secs(10), "slowloris dropped", || !reasons.lock().is_empty());
    assert_eq!(*reasons.lock(), vec![CloseReason::Idle(IdleKind::Read).to_string()]);
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest); // the echo of its partial line, then end of stream
    assert_eq!(echo_round_trip(&mut chatty, b"still here"), b"still here");
    assert_eq!(server.stats().closed_idle, 1);
}

/// Keeps idle connections and sends a heartbeat instead.
struct Heartbeat;

impl IoHandler for Heartbeat {
    type ConnState = ();

    fn on_idle(&mut self, conn: &mut Conn<'_>, kind: IdleKind) -> IdleAction {
        assert_eq!(kind, IdleKind::Write);
        conn.send(b"beat\n");
        IdleAction::Keep
    }
}

/// `on_idle` may keep the connection: the timeout starts over, so heartbeats come periodically.
#[test]
fn idle_handler_can_keep_the_connection() {
    let config = ServerConfig::default().threads(1).idle_timeouts(IdleTimeouts::write(Duration::from_millis(30)));
    let server = EpollTPServer::from_fn(config, || Heartbeat).start().unwrap();
    let mut s = connect(server.local_addr());
    assert_eq!(read_n(&mut s, 15), b"beat\nbeat\nbeat\n");
    assert_eq!(server.stats().closed_idle, 0);
}

/// A peer that sends without ever reading cannot make an echo server buffer without bound:
/// past the high water mark the server stops reading it; once the peer reads, everything
/// arrives intact.
#[test]
fn peer_that_never_reads_is_bounded_by_backpressure() {
    const TOTAL: usize = 48 << 20;
    let config = ServerConfig::default().threads(1).write_water_marks(1 << 20, 256 << 10);
    let (server, _) = echo_server(config);
    let mut s = connect(server.local_addr());
    let mut writer = s.try_clone().unwrap();
    let data = Arc::new(pattern(TOTAL, 3));
    let d = data.clone();
    let w = std::thread::spawn(move || writer.write_all(&d));
    // Wait until the server has paused reading: its input count stops growing.
    let mut last = 0;
    wait_until(Duration::from_secs(20), "server paused reading", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.stats().bytes_in;
        let paused = now == last && now > 0;
        last = now;
        paused
    });
    let stats = server.stats();
    assert!(stats.bytes_in < TOTAL as u64, "server kept reading: {stats:?}");
    assert!(
        stats.buffered_bytes < 8 << 20,
        "server buffers {} bytes for a peer that never reads",
        stats.buffered_bytes
    );
    let echoed = read_n(&mut s, TOTAL);
    w.join().unwrap().unwrap();
    assert!(echoed == *data, "echo intact after backpressure");
}

/// Sends 32 MiB on connect: more than the kernel's socket buffers take.
struct Pusher(Reasons);

impl IoHandler for Pusher {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.send(&vec![7u8; 32 << 20]);
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

/// With an output cap, a connection whose peer does not read is closed once its unsent
/// output passes the cap.
#[test]
fn output_cap_closes_a_connection_whose_peer_does_not_read() {
    let reasons = Reasons::default();
    let r = reasons.clone();
    let config = ServerConfig::default().threads(1).max_output_buffer(Some(1 << 20));
    let server = EpollTPServer::from_fn(config, move || Pusher(r.clone())).start().unwrap();
    let _s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "closed", || !reasons.lock().is_empty());
    assert_eq!(*reasons.lock(), vec![CloseReason::OutputLimit.to_string()]);
    assert_eq!(server.stats().closed_by_limit, 1);
}

/// Beyond `max_connections`, new connections are refused cleanly (closed at once) and
/// counted; the admitted ones work, and a slot freed admits a new one.
#[test]
fn max_connections_refuses_cleanly() {
    let (server, _) = echo_server(ServerConfig::default().threads(2).max_connections(Some(5)));
    let mut admitted: Vec<_> = (0..5).map(|_| connect(server.local_addr())).collect();
    wait_until(Duration::from_secs(10), "5 admitted", || server.stats().connections == 5);
    for _ in 0..3 {
        let mut extra = connect(server.local_addr());
        let mut buf = [0u8; 1];
        let n = extra.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "refused connection is closed");
    }
    assert_eq!(server.stats().refused, 3);
    for (i, s) in admitted.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(s, &[i as u8]), [i as u8]);
    }
    admitted.pop();
    wait_until(Duration::from_secs(10), "slot freed", || server.stats().connections == 4);
    let mut again = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut again, b"in"), b"in");
}

/// Never consumes input.
struct Hoard;
impl IoHandler for Hoard {
    type ConnState = ();
}

/// The process-wide memory budget: once connections hold that much, reading and accepting
/// pause (buffered memory stays near the budget). The hogs' read-idle timeout then frees their
/// memory (a paused peer cannot be read, not even its end of stream), and the server serves
/// again.
#[test]
fn memory_budget_pauses_reads_and_accepts_then_recovers() {
    const BUDGET: usize = 2 << 20;
    let config = ServerConfig::default()
        .threads(2)
        .memory_budget(Some(BUDGET))
        .max_input_buffer(64 << 20)
        .idle_timeouts(IdleTimeouts::read(Duration::from_secs(5)));
    let server = EpollTPServer::from_fn(config, || Hoard).start().unwrap();
    let addr = server.local_addr();
    let hogs: Vec<_> = (0..4).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(10), "4 connected", || server.stats().connections == 4);
    let writers: Vec<_> = hogs
        .iter()
        .map(|s| {
            let mut w = s.try_clone().unwrap();
            w.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
            std::thread::spawn(move || {
                let chunk = [1u8; 64 << 10];
                for _ in 0..64 {
                    if w.write_all(&chunk).is_err() {
                        break; // the server stopped reading: expected
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // What the writers sent is in the kernel's buffers (several MiB a connection, far more than
    // the budget): the server reads it until the budget stops it.
    wait_until(Duration::from_secs(20), "budget reached", || server.stats().buffered_bytes >= BUDGET as u64 * 7 / 8);
    std::thread::sleep(Duration::from_millis(100));
    let stats = server.stats();
    // Slack: each loop may overshoot by what one turn reads (a few reads of up to 64 KiB plus
    // buffer growth) before it sees the budget.
    assert!(stats.buffered_bytes <= 3 * BUDGET as u64, "buffered {} for a budget of {BUDGET}", stats.buffered_bytes);
    assert!(stats.bytes_in < 4 * 64 * (64 << 10), "reads paused");
    // New connections wait while the budget is exhausted...
    let _waiting = connect(addr);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.stats().accepted, 4, "no accept while over budget");
    // ...and are served once the idle hogs are dropped.
    wait_until(Duration::from_secs(20), "recovered: waiting connection accepted", || server.stats().accepted == 5);
    // The loops close their hogs on their own timers: one loop may free enough to accept
    // before the other has closed its own.
    wait_until(Duration::from_secs(10), "all four hogs closed as idle", || server.stats().closed_idle == 4);
    drop(hogs);
}

/// Pauses reading on the first message and resumes 100 ms later, echoing everything.
struct Pauser {
    paused_once: bool,
}

impl IoHandler for Pauser {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if !self.paused_once {
            self.paused_once = true;
            conn.pause_reading();
            assert!(conn.is_reading_paused());
            conn.set_timer(Duration::from_millis(100), 0);
        }
        conn.send_input();
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, _tag: u64) {
        conn.resume_reading();
    }
}

/// The handler can pause and resume reading; nothing is lost across the pause.
#[test]
fn handler_pause_and_resume_reading() {
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), || Pauser { paused_once: false }).start().unwrap();
    let mut s = connect(server.local_addr());
    let started = Instant::now();
    s.write_all(b"a").unwrap();
    assert_eq!(read_n(&mut s, 1), b"a");
    s.write_all(b"bcd").unwrap();
    assert_eq!(read_n(&mut s, 3), b"bcd");
    assert!(started.elapsed() >= Duration::from_millis(90), "second message waited for the resume");
}

/// Echoes whole lines; a partial line stays in the input until its end arrives.
struct Lines(Reasons);

impl IoHandler for Lines {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        while let Some(end) = conn.input().find_byte(b'\n') {
            let line = conn.input().split_to(end + 1);
            conn.send(&line);
        }
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

/// An exhausted budget holds back only the large holders: peers parked on huge partial frames
/// stop being read, while a peer with a small frame in progress still finishes it and is
/// answered (before, every connection paused and the whole server stalled). The large holders
/// that stay stuck are closed after the stall timeout, and the server accepts again.
#[test]
fn memory_budget_holds_back_large_holders_and_closes_the_stalled() {
    const BUDGET: usize = 1 << 20;
    let reasons = Reasons::default();
    let r = reasons.clone();
    let config = ServerConfig::default()
        .threads(1)
        .memory_budget(Some(BUDGET))
        .memory_budget_stall_timeout(Duration::from_secs(2))
        .max_input_buffer(64 << 20);
    let server = EpollTPServer::from_fn(config, move || Lines(r.clone())).start().unwrap();
    let addr = server.local_addr();
    let mut small = connect(addr);
    small.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(echo_round_trip(&mut small, b"before\n"), b"before\n");
    // A small frame in progress when the budget runs out.
    small.write_all(b"half of a li").unwrap();

    let hogs: Vec<_> = (0..4).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(10), "5 connected", || server.stats().connections == 5);
    for h in &hogs {
        let mut w = h.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
        // A partial frame of up to 2 MiB each, no end of line: 8 MiB against a 1 MiB budget.
        let chunk = [b'x'; 64 << 10];
        for _ in 0..32 {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    wait_until(Duration::from_secs(10), "budget reached", || server.stats().buffered_bytes >= BUDGET as u64 * 7 / 8);
    // The small peer finishes its line while the hogs are held back, and is answered at once.
    let started = Instant::now();
    small.write_all(b"ne\n").unwrap();
    assert_eq!(read_n(&mut small, 15), b"half of a line\n");
    let answered = started.elapsed();
    assert!(answered < Duration::from_secs(1), "answered in {answered:?}: only once the hogs were closed");
    // The stuck hogs are closed for the budget, the small peer is not.
    wait_until(Duration::from_secs(10), "the 4 hogs closed", || server.stats().connections == 1);
    let closed = reasons.lock().clone();
    assert_eq!(closed.len(), 4, "{closed:?}");
    assert!(closed.iter().all(|r| r == &CloseReason::MemoryBudget.to_string()), "{closed:?}");
    assert_eq!(echo_round_trip(&mut small, b"after\n"), b"after\n");
    let mut fresh = connect(addr);
    fresh.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(echo_round_trip(&mut fresh, b"new\n"), b"new\n");
    drop(hogs);
}

/// Beyond `max_connections_per_ip`, one address's new connections are refused cleanly (closed
/// at once) and counted, while another address is served; a place freed admits a new one.
#[test]
fn max_connections_per_ip_refuses_one_address_past_its_share() {
    const PER_IP: usize = 20;
    let (server, _) = echo_server(ServerConfig::default().threads(2).max_connections_per_ip(Some(PER_IP)));
    let addr = server.local_addr();
    let mut squat: Vec<_> = (0..100).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(10), "80 refused", || server.stats().refused_per_ip == 80);
    let stats = server.stats();
    assert_eq!((stats.connections, stats.refused), (PER_IP as u64, 80));
    // The refused ones see the close at once; the admitted ones echo.
    let mut admitted = Vec::new();
    for mut s in squat.drain(..) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"?");
        let mut b = [0u8; 1];
        // Anything but the echo (end of stream, a reset) means refused.
        if let Ok(1) = s.read(&mut b) {
            admitted.push(s);
        }
    }
    assert_eq!(admitted.len(), PER_IP);
    // Another address is served...
    let mut other = util::connect_from("127.0.0.2".parse().unwrap(), addr);
    assert_eq!(echo_round_trip(&mut other, b"other"), b"other");
    // ...and a place given back admits the first address again.
    admitted.pop();
    wait_until(Duration::from_secs(10), "a place given back", || server.stats().connections == PER_IP as u64);
    let mut again = connect(addr);
    assert_eq!(echo_round_trip(&mut again, b"again"), b"again");
    assert_eq!(server.stats().refused_per_ip, 80);
}

/// With the defaults, one address may hold 1,024 connections and no more: a squatter cannot
/// take every descriptor of a server whose user never touched the config.
#[test]
fn by_default_one_address_holds_at_most_1024_connections() {
    const DEFAULT_PER_IP: u64 = 1024;
    let (server, _) = echo_server(ServerConfig::default().threads(2));
    let addr = server.local_addr();
    let squat: Vec<_> = (0..DEFAULT_PER_IP + 16).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(20), "1,024 open and 16 refused", || {
        let stats = server.stats();
        (stats.connections, stats.refused_per_ip) == (DEFAULT_PER_IP, 16)
    });
    let mut other = util::connect_from("127.0.0.2".parse().unwrap(), addr);
    assert_eq!(echo_round_trip(&mut other, b"other"), b"other");
    drop(squat);
}
