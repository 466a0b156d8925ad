//! Faults that need a second process: a client SIGKILLed mid-stream, and a server that runs
//! out of file descriptors. The test binary re-executes itself to run the `child_*` test
//! functions as helper processes (they return at once in a normal run); each test names what
//! it proves.

mod util;

#[path = "util/child.rs"]
mod child;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use child::ChildProc;
use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, echo_round_trip, wait_until};

/// The tests of this binary count descriptors and spawn processes: one at a time.
static SERIAL: StdMutex<()> = StdMutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// kill -9 of a client process mid-stream
// ---------------------------------------------------------------------------------------------

/// How one connection ended, as the server saw it.
#[derive(Debug, Clone)]
struct Closed {
    peer: SocketAddr,
    reason: String,
    passive: bool,
}

/// Echoes, and records every close with its peer.
struct Echo(Arc<Mutex<Vec<Closed>>>);

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }

    fn on_closed(&mut self, conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(Closed { peer: conn.peer_addr(), reason: reason.to_string(), passive: reason.is_passive() });
    }
}

/// Child role `stream_client`: streams to the echo server at `KINGPIN_TARGET` and checks every
/// echoed byte, until its stdin closes; then it finishes sending, reads the echo to the end and
/// reports `verified`. Reports `connected` (with its local address) and, after 1 MiB checked,
/// `streaming`.
#[test]
fn child_stream_client() {
    if child::role().as_deref() != Some("stream_client") {
        return;
    }
    child::watchdog(Duration::from_secs(60));
    let target: SocketAddr = child::env("KINGPIN_TARGET").parse().unwrap();
    let mut s = connect(target);
    child::report("connected", &[("local", s.local_addr().unwrap().to_string())]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let stdin = child::stdin_lines();
    let st = stop.clone();
    std::thread::spawn(move || {
        while stdin.recv().is_ok() {}
        st.store(true, Ordering::Relaxed);
    });
    let mut w = s.try_clone().unwrap();
    let sent_w = sent.clone();
    let writer = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 << 10];
        let mut off = 0u64;
        while !stop.load(Ordering::Relaxed) {
            child::fill_stream(&mut chunk, off);
            w.write_all(&chunk).expect("stream write");
            off += chunk.len() as u64;
            sent_w.store(off, Ordering::Relaxed);
        }
        w.shutdown(NetShutdown::Write).unwrap();
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    let mut announced = false;
    loop {
        let n = s.read(&mut buf).expect("stream read");
        if n == 0 {
            break;
        }
        if let Some(at) = child::check_stream(&buf[..n], got) {
            panic!("echo corrupted at byte {}", got + at as u64);
        }
        got += n as u64;
        if !announced && got >= 1 << 20 {
            announced = true;
            child::report("streaming", &[("bytes", got.to_string())]);
        }
    }
    writer.join().unwrap();
    assert_eq!(got, sent.load(Ordering::Relaxed), "every byte sent came back");
    child::report("verified", &[("bytes", got.to_string())]);
}

/// A client process SIGKILLed while streaming through the echo server: the server closes that
/// connection with a passive reason (reset or end of stream), while a second client process
/// streaming at the same time and three in-process connections go on unharmed — the survivor
/// verifies every byte of its echo — and once all are gone the server holds exactly the
/// connections and descriptors it held before the children came.
#[test]
fn client_process_killed_mid_stream() {
    let _serial = serial();
    let closed = Arc::new(Mutex::new(Vec::new()));
    let c = closed.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), move || Echo(c.clone())).start().unwrap();
    let addr = server.local_addr();
    let mut locals: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for (i, s) in locals.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(s, &[i as u8; 100]), [i as u8; 100]);
    }
    wait_until(WAIT, "3 local connections", || server.stats().connections == 3);
    let fds_before = open_fds();

    let env = [("KINGPIN_TARGET", addr.to_string())];
    let mut victim = ChildProc::spawn("child_stream_client", "stream_client", &env, &[]);
    let mut survivor = ChildProc::spawn("child_stream_client", "stream_client", &env, &[]);
    let victim_addr: SocketAddr = victim.expect("connected", WAIT).get("local");
    let survivor_addr: SocketAddr = survivor.expect("connected", WAIT).get("local");
    victim.expect("streaming", WAIT);
    survivor.expect("streaming", WAIT);
    let bytes_at_kill = server.stats().bytes_in;

    victim.kill(); // SIGKILL: no close, no shutdown; the kernel tears the socket down.
    wait_until(WAIT, "server saw the killed client go", || closed.lock().iter().any(|c| c.peer == victim_addr));
    let gone = closed.lock().iter().find(|c| c.peer == victim_addr).cloned().unwrap();
    assert!(gone.passive, "killed client's connection closed for a passive reason, got: {}", gone.reason);
    eprintln!("killed client's connection: {}", gone.reason);
    assert_eq!(closed.lock().len(), 1, "only the killed client's connection closed: {:?}", closed.lock());

    // Everyone else is unaffected: the survivor keeps streaming, the local connections echo.
    wait_until(WAIT, "survivor still streaming", || server.stats().bytes_in > bytes_at_kill + (4 << 20));
    for (i, s) in locals.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(s, &[i as u8 + 10; 1000]), [i as u8 + 10; 1000]);
    }
    survivor.close_stdin();
    let verified = survivor.expect("verified", WAIT);
    assert!(verified.get::<u64>("bytes") >= 1 << 20);
    assert!(survivor.wait(WAIT).success(), "survivor exits cleanly");
    wait_until(WAIT, "survivor's close", || closed.lock().iter().any(|c| c.peer == survivor_addr));
    let last = closed.lock().iter().find(|c| c.peer == survivor_addr).cloned().unwrap();
    assert_eq!(last.reason, CloseReason::PeerClosed.to_string());

    drop((victim, survivor));
    wait_until(WAIT, "back to the 3 local connections", || server.stats().connections == 3);
    assert_eq!(open_fds(), fds_before, "descriptors leaked by the killed client's connection");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.closed, stats.panics), (5, 2, 0), "{stats:?}");
    for (i, s) in locals.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(s, &[i as u8; 10]), [i as u8; 10]);
    }
}

// ---------------------------------------------------------------------------------------------
// fd exhaustion and full recovery
// ---------------------------------------------------------------------------------------------

/// Echoes, and counts `on_accept_error` calls.
struct CountingEcho(Arc<AtomicU64>);

impl IoHandler for CountingEcho {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }

    fn on_accept_error(&mut self, error: &std::io::Error) {
        assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "unexpected accept error {error}");
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The fd limit that leaves exactly `headroom` (at least 2) free descriptor numbers below it.
fn limit_with_headroom(headroom: usize) -> u64 {
    // The listing includes its own directory fd: the lowest number free before it was opened,
    // free again once it is closed, and below every other free number — one free slot that
    // the walk below does not see.
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let (mut limit, mut free) = (0u64, 1usize);
    while free < headroom {
        if !open.contains(&limit) {
            free += 1;
        }
        limit += 1;
    }
    limit
}

/// Child role `emfile_server`: an echo server whose process may open only
/// `KINGPIN_HEADROOM` more descriptors. Reports `ready` (address), then answers each stdin line
/// with a `stats` report; on end of stdin it shuts the server down and reports `bye`.
#[test]
fn child_emfile_server() {
    if child::role().as_deref() != Some("emfile_server") {
        return;
    }
    child::watchdog(Duration::from_secs(60));
    let headroom: usize = child::env("KINGPIN_HEADROOM").parse().unwrap();
    let errors = Arc::new(AtomicU64::new(0));
    let e = errors.clone();
    // A short back-off: each back-off period refuses one pending connection.
    let config = ServerConfig::default().threads(2).accept_error_backoff(Duration::from_millis(5));
    let server = EpollTPServer::from_fn(config, move || CountingEcho(e.clone())).start().unwrap();
    let commands = child::stdin_lines(); // its thread holds no descriptor of its own
    let limit = limit_with_headroom(headroom);
    let (_, hard) = nix_getrlimit();
    let rl = libc::rlimit { rlim_cur: limit, rlim_max: hard };
    // SAFETY: setrlimit reads the struct we pass by reference, which outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
    child::report("ready", &[("addr", server.local_addr().to_string()), ("limit", limit.to_string())]);
    while commands.recv().is_ok() {
        let s = server.stats();
        child::report(
            "stats",
            &[
                ("connections", s.connections.to_string()),
                ("accepted", s.accepted.to_string()),
                ("refused", s.refused.to_string()),
                ("accept_errors", s.accept_errors.to_string()),
                ("on_accept_error", errors.load(Ordering::Relaxed).to_string()),
                ("panics", s.panics.to_string()),
            ],
        );
    }
    server.shutdown();
    server.join().unwrap();
    child::report("bye", &[]);
}

/// The current (soft, hard) RLIMIT_NOFILE.
fn nix_getrlimit() -> (u64, u64) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass, which outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    (rl.rlim_cur, rl.rlim_max)
}

/// Opens `n` connections, sends a byte on each, and sorts them into those echoed (admitted)
/// and those closed by the server (refused); a connection that gets neither within the socket
/// timeout fails the test (a refused client must not hang).
fn flood(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let conns: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for mut s in conns {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"x"); // may fail already if the server refused it
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(1) => {
                assert_eq!(&b, b"x");
                admitted.push(s);
            }
            Ok(_) => refused += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => refused += 1,
            Err(e) => panic!("a connection neither served nor closed: {e}"),
        }
    }
    (admitted, refused)
}

/// Polls the child's stats until `cond` holds (bounded).
fn child_stats_until(server: &mut ChildProc, what: &str, cond: impl Fn(&child::Report) -> bool) -> child::Report {
    let deadline = Instant::now() + WAIT;
    loop {
        server.send("stats");
        let r = server.expect("stats", WAIT);
        if cond(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {r:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server out of file descriptors survives and recovers fully: with room for 30 more fds,
/// 100 clients arrive; 30 are served, the 70 others are refused cleanly (they see their
/// connection closed, none hangs), each `EMFILE` is counted in `Stats::accept_errors` and
/// reported to `on_accept_error`, and the served ones keep echoing. Once they leave, a second
/// flood gets exactly the same 30 served — no descriptor was lost on the way (the spare fd
/// included) — and after that connections below the limit are all served without an accept
/// error.
#[test]
fn fd_exhaustion_refuses_cleanly_and_recovers() {
    const HEADROOM: usize = 30;
    const FLOOD: usize = 100;
    let _serial = serial();
    let started = Instant::now();
    let mut server =
        ChildProc::spawn("child_emfile_server", "emfile_server", &[("KINGPIN_HEADROOM", HEADROOM.to_string())], &[]);
    let addr: SocketAddr = server.expect("ready", WAIT).get("addr");
    let mut refused_total = 0;
    for round in 1..=2 {
        let (mut admitted, refused) = flood(addr, FLOOD);
        assert_eq!((admitted.len(), refused), (HEADROOM, FLOOD - HEADROOM), "round {round}");
        refused_total += refused;
        let r = child_stats_until(&mut server, "refusals counted", |r| r.get::<usize>("refused") == refused_total);
        assert_eq!(r.get::<usize>("connections"), HEADROOM, "round {round}: {r:?}");
        assert!(r.get::<u64>("accept_errors") >= round, "round {round}: {r:?}");
        assert_eq!(r.get::<u64>("on_accept_error"), r.get::<u64>("accept_errors"), "round {round}: {r:?}");
        assert_eq!(r.get::<u64>("panics"), 0);
        for (i, s) in admitted.iter_mut().enumerate() {
            assert_eq!(echo_round_trip(s, &[i as u8; 64]), [i as u8; 64], "round {round}: served ones still echo");
        }
        drop(admitted);
        child_stats_until(&mut server, "all closed", |r| r.get::<usize>("connections") == 0);
    }
    // Below the limit (one slot left: accepting the last one would leave `accept` itself
    // without a descriptor, which is an EMFILE), connections are simply served.
    let errors_before = child_stats_until(&mut server, "stats", |_| true).get::<u64>("accept_errors");
    let mut fresh: Vec<TcpStream> = (0..HEADROOM - 1).map(|_| connect(addr)).collect();
    for (i, s) in fresh.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(s, &[i as u8; 8]), [i as u8; 8], "recovered: all served");
    }
    let r = child_stats_until(&mut server, "all admitted", |r| r.get::<usize>("connections") == HEADROOM - 1);
    assert_eq!(r.get::<u64>("accept_errors"), errors_before, "no accept error below the limit");
    drop(fresh);
    server.close_stdin();
    server.expect("bye", WAIT);
    assert!(server.wait(WAIT).success(), "the server process exits cleanly");
    eprintln!("fd exhaustion test: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// SIGPIPE at its default disposition
// ---------------------------------------------------------------------------------------------

/// Streams the file `KINGPIN_FILE` to every client with `send_file`, 256 KiB a call.
struct FileSender {
    path: std::path::PathBuf,
}

impl IoHandler for FileSender {
    type ConnState = Option<(std::fs::File, u64)>;

    fn on_connect(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        *conn.state_mut() = Some((std::fs::File::open(&self.path).unwrap(), 0));
        self.on_write_complete(conn);
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let kingpin::Parts { state, mut output, .. } = conn.parts();
        let Some((file, offset)) = state else { return };
        let end = file.metadata().unwrap().len();
        let max = (end - *offset).min(256 << 10) as usize;
        let done = max == 0 || output.send_file(file, offset, max).is_err();
        if done {
            conn.close();
        }
    }
}

/// Child role `sigpipe_server`: a `send_file` server in a process whose `SIGPIPE` is at its
/// default disposition, as in a C or C++ host (Rust's runtime ignores it; this undoes that).
/// Reports `ready`; answers each stdin line with `alive`; on end of stdin reports `bye`.
#[test]
fn child_sigpipe_server() {
    if child::role().as_deref() != Some("sigpipe_server") {
        return;
    }
    child::watchdog(Duration::from_secs(60));
    // SAFETY: signal() with SIG_DFL only changes this process's disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let path = std::path::PathBuf::from(child::env("KINGPIN_FILE"));
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), move || FileSender { path: path.clone() })
        .start()
        .unwrap();
    child::report("ready", &[("addr", server.local_addr().to_string())]);
    let commands = child::stdin_lines();
    while commands.recv().is_ok() {
        let s = server.stats();
        child::report("alive", &[("accepted", s.accepted.to_string()), ("connections", s.connections.to_string())]);
    }
    server.shutdown();
    server.join().unwrap();
    child::report("bye", &[]);
}

/// Clients that half-close, read a little and leave make the server's next `sendfile` fail
/// with `EPIPE`, which raises `SIGPIPE`; with the signal at its default that used to kill the
/// whole server. The IO threads block it: the server survives and serves on.
#[test]
fn sigpipe_at_its_default_does_not_kill_the_server() {
    let _serial = serial();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&vec![7u8; 32 << 20]).unwrap();
    file.flush().unwrap();
    let env = [("KINGPIN_FILE", file.path().display().to_string())];
    let mut server = ChildProc::spawn("child_sigpipe_server", "sigpipe_server", &env, &[]);
    let addr: SocketAddr = server.expect("ready", WAIT).get("addr");
    for _ in 0..10 {
        let mut s = connect(addr);
        s.shutdown(NetShutdown::Write).unwrap(); // the server's side goes to CLOSE_WAIT
        let mut some = [0u8; 64 << 10];
        s.read_exact(&mut some).unwrap();
        drop(s); // unread bytes: a reset, then EPIPE on the server's next sendfile
        std::thread::sleep(Duration::from_millis(20));
    }
    server.send("stats");
    let alive = server.expect("alive", WAIT);
    assert_eq!(alive.get::<u64>("accepted"), 10);
    let mut s = connect(addr);
    let mut some = [0u8; 1024];
    s.read_exact(&mut some).unwrap();
    assert_eq!(some, [7u8; 1024], "still serving");
    drop(s);
    server.close_stdin();
    server.expect("bye", WAIT);
    assert!(server.wait(WAIT).success());
}
