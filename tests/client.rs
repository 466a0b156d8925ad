//! EpollTPClient: connect failures, timeouts, retries, thousands of targets, waking, finishing.

mod util;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{
    ClientConfig, Conn, ConnectFailure, EpollTPClient, EpollTPServer, IoHandler, Reconnect, ServerConfig, Target,
};
use parking_lot::Mutex;
use util::{wait_until, Record, RecordingEcho};

/// What the client handlers saw.
#[derive(Default)]
struct Seen {
    connected: AtomicUsize,
    verified: AtomicUsize,
    failures: Mutex<Vec<(u64, io::ErrorKind, String, u32)>>,
    loops: Mutex<Vec<usize>>,
}

/// Expects its first message echoed back, then closes.
struct Checker(Arc<Seen>);

impl IoHandler for Checker {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0.connected.fetch_add(1, Ordering::Relaxed);
        self.0.loops.lock().push(conn.loop_index());
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        let expected = conn.target().expect("client connection has a target").get_first_message().to_vec();
        if conn.input().len() >= expected.len() {
            assert_eq!(conn.input().as_slice(), &expected[..]);
            self.0.verified.fetch_add(1, Ordering::Relaxed);
            conn.close();
        }
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        self.0.failures.lock().push((
            target.get_tag(),
            failure.error.kind(),
            failure.error.to_string(),
            failure.attempts,
        ));
    }
}

fn client(threads: usize, seen: &Arc<Seen>) -> EpollTPClient<Checker> {
    let s = seen.clone();
    EpollTPClient::from_fn(ClientConfig::default().threads(threads), move || Checker(s.clone()))
}

fn echo_server(threads: usize) -> kingpin::ServerHandle<RecordingEcho> {
    let record = Record::new();
    EpollTPServer::from_fn(ServerConfig::default().threads(threads), move || RecordingEcho(record.clone()))
        .start()
        .unwrap()
}

/// A port on loopback where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn closed_port_reports_connection_refused() {
    let seen = Arc::new(Seen::default());
    client(1, &seen).run_until_idle([Target::new("127.0.0.1", closed_port()).tag(42)]).unwrap();
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].0, failures[0].1, failures[0].3), (42, io::ErrorKind::ConnectionRefused, 1));
    assert_eq!(seen.connected.load(Ordering::Relaxed), 0);
}

/// A loopback listener whose accept queue is full drops new SYNs, so a connect to it never
/// completes: the connect timeout must fire, within the timeout plus slack.
#[test]
fn connect_timeout_fires_for_a_target_that_never_answers() {
    // backlog 0 lets one connection wait; fill the queue and never accept.
    let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = full.local_addr().unwrap();
    kingpin_test_listen_backlog_zero(&full);
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).connect_timeout(Duration::from_millis(300));
    let started = Instant::now();
    EpollTPClient::from_fn(config, move || Checker(s.clone()))
        .run_until_idle([Target::new("127.0.0.1", addr.port())])
        .unwrap();
    let elapsed = started.elapsed();
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].1, io::ErrorKind::TimedOut, "{failures:?}");
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}

/// Shrinks the accept queue of `l` to its minimum (`listen(fd, 0)` again on the bound socket).
fn kingpin_test_listen_backlog_zero(l: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: `l` is a valid, bound, listening socket; listen() only changes its backlog.
    let r = unsafe { libc::listen(l.as_raw_fd(), 0) };
    assert_eq!(r, 0);
}

/// 5,000 targets added while the client runs, over 4 IO threads: every one connects, gets
/// its first message echoed, and the work spreads over the threads.
#[test]
fn five_thousand_targets_added_while_running() {
    let server = echo_server(2);
    let port = server.local_addr().port();
    let seen = Arc::new(Seen::default());
    let handle = client(4, &seen).start().unwrap();
    let adder = handle.targets().clone();
    std::thread::spawn(move || {
        for i in 0..5000u64 {
            let msg = format!("hello from target {i}\n");
            adder.add(Target::new("127.0.0.1", port).first_message(msg).tag(i)).unwrap();
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .join()
    .unwrap();
    assert!(handle.wait_idle(Duration::from_secs(60)), "client did not finish: {:?}", handle.targets());
    assert_eq!(seen.failures.lock().len(), 0, "{:?}", &seen.failures.lock()[..5.min(seen.failures.lock().len())]);
    assert_eq!(seen.verified.load(Ordering::Relaxed), 5000);
    let per_loop: Vec<u64> = handle.loop_stats().iter().map(|s| s.closed).collect();
    eprintln!("connections per client thread: {per_loop:?}");
    assert!(per_loop.iter().all(|&n| n > 0), "every IO thread took targets: {per_loop:?}");
    handle.shutdown();
    handle.join().unwrap();
}

/// A client with nothing to do sleeps; a target added later from another thread wakes it,
/// and `run_until_idle` returns by itself once that target is done.
#[test]
fn targets_added_later_wake_sleeping_threads_and_the_client_ends_by_itself() {
    let server = echo_server(1);
    let port = server.local_addr().port();
    let seen = Arc::new(Seen::default());
    let handle = client(2, &seen).start().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(handle.stats().connecting + handle.stats().connections, 0);
    let adder = handle.targets().clone();
    std::thread::spawn(move || adder.add(Target::new("127.0.0.1", port).first_message(b"late".to_vec())).unwrap());
    wait_until(Duration::from_secs(10), "late target verified", || seen.verified.load(Ordering::Relaxed) == 1);
    assert!(handle.wait_idle(Duration::from_secs(10)));
    handle.shutdown();
    handle.join().unwrap();

    // The batch form ends by itself.
    let seen = Arc::new(Seen::default());
    let targets = (0..20).map(|i| Target::new("127.0.0.1", port).first_message(format!("t{i}")));
    client(2, &seen).run_until_idle(targets).unwrap();
    assert_eq!(seen.verified.load(Ordering::Relaxed), 20);
}

/// Retries: a refused target with a policy is tried `max_attempts` times before
/// `on_connect_failed`; a target whose server comes up during the retries connects.
#[test]
fn reconnect_retries_with_backoff() {
    let policy = Reconnect {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        jitter_percent: 50,
    };
    let seen = Arc::new(Seen::default());
    let started = Instant::now();
    client(1, &seen).run_until_idle([Target::new("127.0.0.1", closed_port()).reconnect(policy)]).unwrap();
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].1, failures[0].3), (io::ErrorKind::ConnectionRefused, 3));
    assert!(started.elapsed() >= Duration::from_millis(10 + 20), "two back-offs were waited");

    // The server appears after the first attempts have failed.
    let port = closed_port();
    let seen = Arc::new(Seen::default());
    let handle = client(1, &seen).start().unwrap();
    let patient = Reconnect { max_attempts: 50, initial_backoff: Duration::from_millis(20), ..policy };
    handle.add(Target::new("127.0.0.1", port).reconnect(patient).first_message(b"finally".to_vec())).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let record = Record::new();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = EpollTPServer::from_fn(ServerConfig::new(addr).threads(1), move || RecordingEcho(record.clone()))
        .start()
        .unwrap();
    assert!(handle.wait_idle(Duration::from_secs(20)));
    assert_eq!(seen.verified.load(Ordering::Relaxed), 1, "failures: {:?}", seen.failures.lock());
    handle.shutdown();
    handle.join().unwrap();
}

/// Names are resolved off the IO threads; one that does not resolve is a connect failure with
/// a clear error, and `localhost` works.
#[test]
fn name_resolution_success_and_failure() {
    let server = echo_server(1);
    let port = server.local_addr().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).resolve_timeout(Duration::from_secs(3));
    EpollTPClient::from_fn(config, move || Checker(s.clone()))
        .run_until_idle([
            Target::new("localhost", port).first_message(b"via name".to_vec()),
            Target::new("no-such-host.invalid", port).tag(9),
        ])
        .unwrap();
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 9);
    assert!(failures[0].2.contains("resolving no-such-host.invalid"), "{}", failures[0].2);
    // localhost may resolve to ::1 first, where the IPv4 server does not listen.
    let localhost_ok = seen.verified.load(Ordering::Relaxed) == 1;
    let localhost_v6_only = format!("localhost:{port}")
        .parse::<SocketAddr>()
        .is_err_and(|_| std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port)).unwrap().all(|a| a.is_ipv6()));
    assert!(localhost_ok || localhost_v6_only);
}

/// Shutdown while connects are in flight reports them as failed (`Interrupted`) and returns.
#[test]
fn shutdown_interrupts_connects_in_flight() {
    let full = TcpListener::bind("127.0.0.1:0").unwrap();
    kingpin_test_listen_backlog_zero(&full);
    let addr = full.local_addr().unwrap();
    let _fillers: Vec<_> =
        (0..8).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()).collect();
    let seen = Arc::new(Seen::default());
    let handle = client(1, &seen).start().unwrap();
    for _ in 0..3 {
        handle.add(Target::new("127.0.0.1", addr.port())).unwrap();
    }
    wait_until(Duration::from_secs(10), "connects in flight", || handle.stats().connecting == 3);
    handle.shutdown();
    handle.join().unwrap();
    let kinds: Vec<_> = seen.failures.lock().iter().map(|f| f.1).collect();
    assert_eq!(kinds, vec![io::ErrorKind::Interrupted; 3]);
}

/// A retry still waiting when the client shuts down ends the target too: the client joins and
/// nothing stays outstanding.
#[test]
fn shutdown_ends_targets_waiting_to_retry() {
    let seen = Arc::new(Seen::default());
    let handle = client(1, &seen).start().unwrap();
    let slow = Reconnect { max_attempts: 10, initial_backoff: Duration::from_secs(30), ..Reconnect::default() };
    handle.add(Target::new("127.0.0.1", closed_port()).reconnect(slow)).unwrap();
    wait_until(Duration::from_secs(10), "first attempt failed", || {
        handle.targets().queued() == 0 && handle.stats().connecting == 0
    });
    assert_eq!(handle.targets().outstanding(), 1, "waiting to retry");
    let pool = handle.targets().clone();
    handle.shutdown();
    handle.join().unwrap();
    assert_eq!(pool.outstanding(), 0);
    assert!(pool.wait_idle(Duration::from_secs(1)));
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 1, "on_connect_failed exactly once: {failures:?}");
    assert_eq!((failures[0].1, failures[0].3), (io::ErrorKind::Interrupted, 1));
}

/// Targets still queued when the client shuts down are reported too (`Interrupted`), once each.
#[test]
fn shutdown_reports_queued_targets() {
    let (hole, _fillers) = black_hole();
    let port = hole.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).max_connecting(1).connect_timeout(Duration::from_secs(30));
    let handle = EpollTPClient::from_fn(config, move || Checker(s.clone())).start().unwrap();
    for i in 0..5 {
        handle.add(Target::new("127.0.0.1", port).tag(i)).unwrap();
    }
    wait_until(Duration::from_secs(10), "one connect in flight", || handle.stats().connecting == 1);
    handle.shutdown();
    handle.join().unwrap();
    let mut tags: Vec<u64> = seen.failures.lock().iter().map(|f| f.0).collect();
    tags.sort();
    assert_eq!(tags, [0, 1, 2, 3, 4]);
    assert!(seen.failures.lock().iter().all(|f| f.1 == io::ErrorKind::Interrupted));
}

/// "Never" written as `Duration::MAX` is accepted everywhere a timeout is: nothing overflows.
#[test]
fn duration_max_means_never() {
    let record = Record::new();
    let r = record.clone();
    let config = ServerConfig::default()
        .threads(1)
        .shutdown_timeout(Duration::MAX)
        .idle_timeouts(kingpin::IdleTimeouts::read(Duration::MAX));
    let server = EpollTPServer::from_fn(config, move || RecordingEcho(r.clone())).start().unwrap();
    let port = server.local_addr().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).connect_timeout(Duration::MAX).shutdown_timeout(Duration::MAX);
    EpollTPClient::from_fn(config, move || Checker(s.clone()))
        .run_until_idle_timeout(
            [Target::new("127.0.0.1", port).first_message(b"forever".to_vec())],
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(seen.verified.load(Ordering::Relaxed), 1);
    server.shutdown();
    server.join().unwrap();
}

/// A listener whose accept queue is full and never drains: connects to it hang.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let full = TcpListener::bind("127.0.0.1:0").unwrap();
    kingpin_test_listen_backlog_zero(&full);
    let addr = full.local_addr().unwrap();
    let fillers = (0..8).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()).collect();
    (full, fillers)
}

/// `max_connecting` bounds the connects in flight per thread; the rest wait in the pool.
#[test]
fn max_connecting_bounds_connects_in_flight() {
    let (hole, _fillers) = black_hole();
    let port = hole.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).max_connecting(2).connect_timeout(Duration::from_millis(100));
    let handle = EpollTPClient::from_fn(config, move || Checker(s.clone())).start().unwrap();
    for i in 0..8 {
        handle.add(Target::new("127.0.0.1", port).tag(i)).unwrap();
    }
    let mut most = 0;
    while !handle.wait_idle(Duration::from_millis(5)) {
        most = most.max(handle.stats().connecting);
        assert!(most <= 2, "{most} connects in flight");
    }
    let failures = seen.failures.lock().clone();
    assert_eq!(failures.len(), 8);
    assert!(failures.iter().all(|f| f.1 == io::ErrorKind::TimedOut), "{failures:?}");
    handle.shutdown();
    handle.join().unwrap();
}

/// `run_until_idle_timeout` gives up, shuts down and says so.
#[test]
fn run_until_idle_timeout_gives_up() {
    let (hole, _fillers) = black_hole();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let config = ClientConfig::default().threads(1).connect_timeout(Duration::from_secs(30));
    let started = Instant::now();
    let err = EpollTPClient::from_fn(config, move || Checker(s.clone()))
        .run_until_idle_timeout(
            [Target::new("127.0.0.1", hole.local_addr().unwrap().port())],
            Duration::from_millis(200),
        )
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(seen.failures.lock()[0].1, io::ErrorKind::Interrupted, "the connect in flight was interrupted");
}
