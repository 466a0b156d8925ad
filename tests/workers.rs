//! Blocking work off the IO threads: jobs run on the worker pool and their completion comes
//! back on the connection's own loop — or says the connection closed meanwhile; a full queue is
//! refused at once; a panicking job is reported and its worker lives on; and at shutdown every
//! completion is called exactly once.

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, Error, IoHandler, JobError, LoopCtx, ServerConfig};
use parking_lot::Mutex;
use util::{connect, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// What the tests see of the jobs, from any thread.
#[derive(Default)]
struct Seen {
    /// (thread the job ran on, thread its completion ran on, loop's own thread) per job.
    threads: Mutex<Vec<(String, String, String)>>,
    /// Completions per job number: must end at exactly one each.
    completions: Mutex<HashMap<u64, u32>>,
    /// Outcomes of completions whose connection had closed.
    closed_outcomes: Mutex<Vec<Result<String, JobError>>>,
    /// Jobs started.
    started: AtomicU64,
    /// Releases the jobs that wait for it (`block`).
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// A line protocol: `echo X` (a job returns X), `panic`, `block` (a job waits to be released),
/// `wait` (a job waits for its cancel token). The completion
/// answers `ok X`, `err ...` or `busy`.
struct Jobs {
    seen: Arc<Seen>,
    next: u64,
    loop_thread: String,
}

impl IoHandler for Jobs {
    type ConnState = ();

    fn on_start(&mut self, _ctx: &mut LoopCtx<'_, Self>) {
        self.loop_thread = thread_name();
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        while let Some(pos) = conn.input().as_slice().iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&conn.input().as_slice()[..pos]).into_owned();
            conn.input().advance(pos + 1);
            self.next += 1;
            let n = self.next + ((conn.loop_index() as u64) << 32);
            let seen = self.seen.clone();
            let job_seen = self.seen.clone();
            let job = move |token: &kingpin::CancelToken| -> String {
                job_seen.started.fetch_add(1, Ordering::SeqCst);
                let ran_on = thread_name();
                let word: Vec<&str> = line.splitn(2, ' ').collect();
                let value = match word[0] {
                    "echo" => word.get(1).copied().unwrap_or("").to_owned(),
                    "panic" => panic!("job {n} panics on purpose"),
                    "block" => {
                        let rx = job_seen.release.lock().take();
                        if let Some(rx) = rx {
                            let _ = rx.recv_timeout(WAIT);
                        }
                        "released".to_owned()
                    }
                    "wait" => format!("cancelled={}", token.sleep(WAIT)),
                    other => format!("unknown {other}"),
                };
                format!("{ran_on} {value}")
            };
            let queued = Self::spawn_blocking(conn, job, move |me: &mut Self, conn, result| {
                *seen.completions.lock().entry(n).or_default() += 1;
                match conn {
                    Some(conn) => {
                        let reply = match &result {
                            Ok(v) => {
                                let (ran_on, value) = v.split_once(' ').unwrap();
                                seen.threads.lock().push((ran_on.to_owned(), thread_name(), me.loop_thread.clone()));
                                format!("ok {value}\n")
                            }
                            Err(e) => format!("err {e}\n"),
                        };
                        conn.send(reply.as_bytes());
                    }
                    None => seen.closed_outcomes.lock().push(result),
                }
            });
            match queued {
                Ok(()) => {}
                Err(Error::Busy) => conn.send(b"busy\n"),
                Err(e) => conn.send(format!("refused {e}\n").as_bytes()),
            }
        }
    }
}

fn server(config: ServerConfig) -> (kingpin::ServerHandle<Jobs>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let server = EpollTPServer::from_fn(config, move || Jobs { seen: s.clone(), next: 0, loop_thread: String::new() })
        .start()
        .unwrap();
    (server, seen)
}

fn ask(reader: &mut BufReader<TcpStream>, line: &str) -> String {
    reader.get_mut().write_all(format!("{line}\n").as_bytes()).unwrap();
    read_line(reader)
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    answer.trim_end().to_owned()
}

fn client(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let s = connect(addr);
    s.set_read_timeout(Some(WAIT)).unwrap();
    BufReader::new(s)
}

#[test]
fn results_come_back_on_the_connections_own_loop() {
    let (server, seen) = server(ServerConfig::default().threads(2).worker_threads(2));
    let mut clients: Vec<_> = (0..6).map(|_| client(server.local_addr())).collect();
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            assert_eq!(ask(c, &format!("echo {i}-{round}")), format!("ok {i}-{round}"));
        }
    }
    let threads = seen.threads.lock();
    assert_eq!(threads.len(), 30);
    for (ran_on, done_on, loop_thread) in threads.iter() {
        assert!(ran_on.starts_with("kingpin-worker-"), "the job ran on {ran_on}");
        assert_eq!(done_on, loop_thread, "the completion runs on the connection's loop");
        assert!(done_on.starts_with("kingpin-io-"), "{done_on}");
    }
    assert_eq!(server.stats().panics, 0, "the loop-level jobs of on_start completed on their loop");
}

#[test]
fn a_closed_connection_cancels_its_job_and_its_completion_says_so() {
    let (server, seen) = server(ServerConfig::default().threads(1));
    let mut c = client(server.local_addr());
    c.get_mut().write_all(b"wait\n").unwrap();
    wait_until(WAIT, "the job started", || seen.started.load(Ordering::SeqCst) == 1);
    drop(c);
    wait_until(WAIT, "the completion ran", || !seen.closed_outcomes.lock().is_empty());
    let outcomes = seen.closed_outcomes.lock().clone();
    assert!(
        matches!(&outcomes[..], [Ok(v)] if v.starts_with("kingpin-worker-") && v.ends_with(" cancelled=true")),
        "{outcomes:?}"
    );
    // The loop serves on.
    let mut again = client(server.local_addr());
    assert_eq!(ask(&mut again, "echo after"), "ok after");
}

#[test]
fn a_full_queue_is_busy_at_once_and_counted() {
    let (server, seen) = server(ServerConfig::default().threads(1).worker_threads(1).worker_queue(2));
    let (release, rx) = mpsc::channel();
    *seen.release.lock() = Some(rx);
    let mut c = client(server.local_addr());
    c.get_mut().write_all(b"block\n").unwrap();
    wait_until(WAIT, "the worker is busy", || seen.started.load(Ordering::SeqCst) == 1);
    // Two fit in the queue; the third is refused at once, without blocking the loop.
    c.get_mut().write_all(b"echo a\necho b\necho c\n").unwrap();
    assert_eq!(read_line(&mut c), "busy");
    let stats = server.stats();
    assert_eq!((stats.workers_busy, stats.jobs_queued), (1, 2));
    assert_eq!(server.workers().stats().rejected, 1);
    // The loop answers another connection meanwhile.
    let mut other = client(server.local_addr());
    other.get_mut().write_all(b"echo d\n").unwrap();
    assert_eq!(read_line(&mut other), "busy");
    release.send(()).unwrap();
    assert_eq!(read_line(&mut c), "ok released");
    assert_eq!(read_line(&mut c), "ok a");
    assert_eq!(read_line(&mut c), "ok b");
}

#[test]
fn a_panicking_job_is_reported_and_its_worker_lives_on() {
    let (server, _seen) = server(ServerConfig::default().threads(1).worker_threads(1));
    let mut c = client(server.local_addr());
    let answer = ask(&mut c, "panic");
    assert!(answer.starts_with("err the job panicked: job "), "{answer}");
    assert!(answer.ends_with("panics on purpose"), "{answer}");
    assert_eq!(ask(&mut c, "echo still"), "ok still");
    assert_eq!(server.workers().stats().threads, 1);
    assert_eq!(server.stats().panics, 0, "a job's panic is the job's, not a callback's");
}

#[test]
fn at_shutdown_every_completion_is_called_exactly_once() {
    let config = ServerConfig::default()
        .threads(2)
        .worker_threads(1)
        .worker_queue(64)
        .shutdown_timeout(Duration::from_millis(300));
    let (server, seen) = server(config);
    let mut clients: Vec<_> = (0..4).map(|_| client(server.local_addr())).collect();
    // One job runs past the deadline, ignoring its token; others wait for their token, and more
    // queue behind them on the single worker.
    let (release, rx) = mpsc::channel();
    *seen.release.lock() = Some(rx);
    clients[0].get_mut().write_all(b"block\n").unwrap();
    wait_until(WAIT, "the long job started", || seen.started.load(Ordering::SeqCst) == 1);
    for c in &mut clients[1..] {
        c.get_mut().write_all(b"wait\necho queued\n").unwrap();
    }
    wait_until(WAIT, "all queued", || server.workers().stats().queued == 6);
    let submitted = 7;
    server.shutdown();
    let joined = server.join();
    assert!(joined.is_ok(), "{joined:?}");
    let _ = release.send(());
    let completions = seen.completions.lock();
    assert_eq!(completions.len(), submitted, "{completions:?}");
    assert!(completions.values().all(|&n| n == 1), "each exactly once: {completions:?}");
    // The connections were gone: every completion heard why.
    let outcomes = seen.closed_outcomes.lock();
    assert_eq!(outcomes.len(), submitted);
    assert!(outcomes.iter().any(|o| o == &Err(JobError::Shutdown)), "{outcomes:?}");
}

/// Runs one loop-level job from `on_start` and reports where its completion ran.
struct LoopJob(mpsc::Sender<(usize, usize, bool)>);

impl IoHandler for LoopJob {
    type ConnState = ();

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        let index = ctx.loop_index();
        let loop_thread = thread_name();
        ctx.spawn_blocking(
            move |_| index * 10,
            move |me, ctx, r| {
                let _ = me.0.send((ctx.loop_index(), r.unwrap(), thread_name() == loop_thread));
            },
        )
        .unwrap();
    }
}

#[test]
fn a_loop_level_job_completes_on_its_loop() {
    let (tx, rx) = mpsc::channel();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(2), move || LoopJob(tx.clone())).start().unwrap();
    let mut got: Vec<_> = (0..2).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, vec![(0, 0, true), (1, 10, true)]);
    drop(server);
}

/// A handler that hands its connections to another handler type.
struct Outer(Inner);

/// The wrapped handler: starts a job as itself.
struct Inner;

impl IoHandler for Inner {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.input().clear();
        match Self::spawn_blocking(conn, |_| 1, |_, _, _| {}) {
            Ok(()) => conn.send(b"queued\n"),
            Err(e) => conn.send(format!("refused: {e}\n").as_bytes()),
        }
    }
}

impl IoHandler for Outer {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        self.0.on_message(conn);
    }
}

#[test]
fn a_job_started_as_another_handler_type_is_refused_not_lost() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Outer(Inner)).start().unwrap();
    let mut c = client(server.local_addr());
    let answer = ask(&mut c, "go");
    assert!(
        answer.starts_with("refused: io error: spawn_blocking must be called as the loop's own handler type"),
        "{answer}"
    );
}

/// Starts a loop-level job that waits for its token, and reports its outcome.
struct TokenJob(mpsc::Sender<Result<bool, JobError>>);

impl IoHandler for TokenJob {
    type ConnState = ();

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        ctx.spawn_blocking(|token| token.sleep(WAIT), |me, _, r| me.0.send(r).unwrap()).unwrap();
    }
}

#[test]
fn shutdown_fires_the_token_of_a_loop_job_and_waits_for_its_value() {
    let (tx, rx) = mpsc::channel();
    let config = ServerConfig::default().threads(1).shutdown_timeout(WAIT);
    let server = EpollTPServer::from_fn(config, move || TokenJob(tx.clone())).start().unwrap();
    wait_until(WAIT, "the job runs", || server.workers().stats().busy == 1);
    server.shutdown();
    server.join().unwrap();
    // The token fired at once, the job returned, and its value (not `Shutdown`) came back.
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(true));
}
