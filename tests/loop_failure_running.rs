//! A loop that fails while it runs — its epoll instance gone under it, as a broken descriptor
//! table would leave it — ends visibly, and the other loops go on: a server keeps accepting on
//! its other threads whatever its accept strategy, and a client's other loops keep connecting.
//!
//! One test in this file, so that no other test opens epoll instances meanwhile: the test
//! finds the loops' epoll descriptors as those that appeared while it started them.

mod util;

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{
    AcceptStrategy, ClientConfig, Conn, EpollTPClient, EpollTPServer, IoHandler, JobError, LoopCtx, ServerConfig,
    Target,
};
use util::{connect, echo_round_trip, wait_until};

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// The descriptors of this process that are epoll instances.
fn epoll_fds() -> HashSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            (link.to_str()? == "anon_inode:[eventpoll]").then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// Puts `/dev/null` in place of the epoll descriptor `fd`: the loop's next `epoll_wait` fails.
fn break_epoll(fd: i32) {
    let null = File::open("/dev/null").unwrap();
    // SAFETY: `fd` is an epoll descriptor of this process that the test means to break;
    // `dup2` closes it and puts a descriptor of /dev/null in its place, which stays open
    // (and is closed by its owner, the broken loop) as any descriptor would.
    let r = unsafe { libc::dup2(null.as_raw_fd(), fd) };
    assert_eq!(r, fd, "dup2: {}", std::io::Error::last_os_error());
}

/// Starts something with two IO loops and returns it with the epoll descriptors it created.
fn with_new_epolls<T>(start: impl FnOnce() -> T) -> (T, Vec<i32>) {
    let before = epoll_fds();
    let started = start();
    let mut new: Vec<i32> = epoll_fds().difference(&before).copied().collect();
    new.sort_unstable();
    (started, new)
}

fn server_survives_a_failed_loop(strategy: AcceptStrategy) {
    let config = ServerConfig::default().threads(2).accept_strategy(strategy);
    let (server, epolls) = with_new_epolls(|| EpollTPServer::from_fn(config, || Echo).start().unwrap());
    assert_eq!(epolls.len(), 2, "{strategy:?}: one epoll per IO loop: {epolls:?}");
    let addr = server.local_addr();
    let mut before = connect(addr);
    assert_eq!(echo_round_trip(&mut before, b"before"), b"before");
    drop(before);

    break_epoll(epolls[0]);
    // Wake both loops so that the broken one meets its broken wait now.
    for l in server.loops() {
        let _ = l.run(|_, _| {});
    }
    wait_until(Duration::from_secs(10), "one loop failed", || server.stats().failed_loops == 1);
    // The other thread accepts and serves every new connection.
    for i in 0..40 {
        let mut s = connect(addr);
        let msg = format!("after {i}");
        assert_eq!(echo_round_trip(&mut s, msg.as_bytes()), msg.as_bytes(), "{strategy:?}: connection {i}");
    }
    server.shutdown();
    let joined = server.join();
    assert!(joined.is_err(), "{strategy:?}: join reports the failed loop");
}

struct Hello(Arc<AtomicU64>);

impl IoHandler for Hello {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
        conn.close();
    }
}

fn client_survives_a_failed_loop() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and drop, so that every connect completes.
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    let connected = Arc::new(AtomicU64::new(0));
    let c = connected.clone();
    let (client, epolls) = with_new_epolls(|| {
        EpollTPClient::from_fn(ClientConfig::default().threads(2), move || Hello(c.clone())).start().unwrap()
    });
    assert_eq!(epolls.len(), 2, "client: one epoll per IO loop: {epolls:?}");
    break_epoll(epolls[0]);
    for l in client.loops() {
        let _ = l.run(|_, _| {});
    }
    wait_until(Duration::from_secs(10), "one client loop failed", || client.stats().failed_loops == 1);
    for _ in 0..20 {
        client.add(Target::new("127.0.0.1", port)).expect("the other loop still takes targets");
    }
    wait_until(Duration::from_secs(10), "20 connected", || connected.load(Ordering::Relaxed) == 20);
    assert!(client.wait_idle(Duration::from_secs(10)), "the batch finishes");
    client.shutdown();
    assert!(client.join().is_err(), "join reports the failed loop");
}

/// Jobs queued and completed by a chain whose completions queue the next job.
#[derive(Default)]
struct Chain {
    queued: AtomicU64,
    completed: AtomicU64,
}

fn chain(ctx: &mut LoopCtx<'_, Echo>, count: Arc<Chain>) {
    let c = count.clone();
    let queued = ctx.spawn_blocking(
        |token| token.sleep(Duration::from_millis(100)),
        move |_, ctx, _: Result<bool, JobError>| {
            c.completed.fetch_add(1, Ordering::SeqCst);
            chain(ctx, c.clone());
        },
    );
    if queued.is_ok() {
        count.queued.fetch_add(1, Ordering::SeqCst);
    }
}

/// A failed loop completes every job it waited for, exactly once, even when a completion
/// tries to queue another while the loop is ending.
fn jobs_of_a_failed_loop_complete_once() {
    let (server, epolls) =
        with_new_epolls(|| EpollTPServer::from_fn(ServerConfig::default().threads(2), || Echo).start().unwrap());
    let count = Arc::new(Chain::default());
    let c = count.clone();
    // The lower descriptor is loop 0's: the loops are made in order.
    server.loops()[0].run(move |_, ctx| chain(ctx, c)).unwrap();
    wait_until(Duration::from_secs(10), "a job queued", || count.queued.load(Ordering::SeqCst) >= 1);
    break_epoll(epolls[0]);
    let _ = server.loops()[0].run(|_, _| {});
    wait_until(Duration::from_secs(10), "loop 0 failed", || server.stats().failed_loops == 1);
    server.shutdown();
    let _ = server.join();
    let (queued, completed) = (count.queued.load(Ordering::SeqCst), count.completed.load(Ordering::SeqCst));
    assert_eq!(queued, completed, "every queued job completed exactly once");
}

#[test]
fn a_failed_loop_leaves_the_others_serving() {
    for strategy in [AcceptStrategy::Mutex, AcceptStrategy::EpollExclusive, AcceptStrategy::ReusePort] {
        server_survives_a_failed_loop(strategy);
    }
    client_survives_a_failed_loop();
    jobs_of_a_failed_loop_complete_once();
}
