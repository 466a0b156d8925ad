//! Benchmark of the asynchronous logger against tracing-appender's `non_blocking` writer (with
//! tracing-subscriber's `fmt` layer), both lossless and writing to a sink that only counts lines.
//!
//! For 1 and 2 producer threads it prints, per logger: lines/s (from the first call until the
//! sink has received every line; kingpin is asked to flush after the last call, as
//! tracing-appender's worker writes as soon as its channel drains) and the caller's per-call cost, p50 and p99, measured in
//! paced bursts the backend can keep up with (each figure includes one `Instant::now`). The
//! ratio column is kingpin / peer. `BENCH_QUICK=1` runs for about a second; without `--bench`
//! (as `cargo test --all-targets` runs it) it only smoke-tests the code.
//!
//! Run: `cargo bench --bench logger` (or `BENCH_QUICK=1 cargo bench --bench logger`).

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// A sink that discards its bytes and counts the lines.
#[derive(Clone, Default)]
struct LineCounter(Arc<AtomicU64>);

impl Write for LineCounter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(memchr::memchr_iter(b'\n', b).count() as u64, Ordering::Relaxed);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One logger under test: how to log line `i`, and its sink's counter.
struct Subject {
    name: &'static str,
    log: fn(u64),
    /// Asks the logger to write what it holds (the end of a throughput run).
    flush: fn(),
    lines: LineCounter,
}

fn kingpin_line(i: u64) {
    log::info!(target: "bench", "request {} from {} took {} us", i, "127.0.0.1:8080", 42);
}

fn tracing_line(i: u64) {
    tracing::info!(target: "bench", "request {} from {} took {} us", i, "127.0.0.1:8080", 42);
}

/// Waits until the sink has seen `expected` lines (at most a minute).
fn wait_lines(counter: &LineCounter, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.0.load(Ordering::Relaxed) < expected {
        assert!(
            Instant::now() < deadline,
            "the sink saw only {} of {expected} lines",
            counter.0.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_micros(200));
    }
}

/// Runs `body(thread index)` on `n` threads started together; returns their results.
fn on_threads<T: Send + 'static>(n: usize, body: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let body = Arc::new(body);
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|t| {
            let (body, start) = (body.clone(), start.clone());
            thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || {
                    start.wait();
                    body(t)
                })
                .unwrap()
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Lines per second with `producers` threads logging `per_thread` lines each, as fast as they can.
fn throughput(s: &Subject, producers: usize, per_thread: u64) -> f64 {
    let before = s.lines.0.load(Ordering::Relaxed);
    let log = s.log;
    let start = Instant::now();
    on_threads(producers, move |_| (0..per_thread).for_each(log));
    (s.flush)();
    wait_lines(&s.lines, before + producers as u64 * per_thread);
    (producers as u64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// Per-call cost (ns) at p50 and p99: bursts of 1000 calls, each timed, then a pause.
fn caller_cost(s: &Subject, producers: usize, bursts: usize) -> (u64, u64) {
    let log = s.log;
    let before = s.lines.0.load(Ordering::Relaxed);
    let mut all: Vec<u64> = on_threads(producers, move |_| {
        let mut ns = Vec::with_capacity(bursts * 1000);
        for b in 0..bursts {
            for i in 0..1000u64 {
                let t = Instant::now();
                log(b as u64 * 1000 + i);
                ns.push(t.elapsed().as_nanos() as u64);
            }
            thread::sleep(Duration::from_millis(2));
        }
        ns
    })
    .concat();
    (s.flush)();
    wait_lines(&s.lines, before + (producers * bursts * 1000) as u64);
    all.sort_unstable();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    (pct(50), pct(99))
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run only.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let (per_thread, bursts) = match (smoke, quick) {
        (true, _) => (2_000, 2),
        (false, true) => (60_000, 20),
        (false, false) => (1_000_000, 200),
    };

    let kingpin = LineCounter::default();
    let _guard = kingpin::LoggerBuilder::new()
        .env_var(None)
        .level(log::LevelFilter::Info)
        .blocking(true)
        .writer(kingpin.clone())
        .init()
        .expect("install the kingpin logger");

    let peer = LineCounter::default();
    let (writer, _worker) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(peer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_thread_ids(true)
        .with_thread_names(true)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("install the tracing subscriber");

    let subjects = [
        Subject { name: "kingpin", log: kingpin_line, flush: || log::logger().flush(), lines: kingpin },
        Subject { name: "tracing-appender", log: tracing_line, flush: || {}, lines: peer },
    ];
    for s in &subjects {
        throughput(s, 1, per_thread / 10); // warm up
    }
    println!(
        "{:<18} {:>9} {:>12} {:>8} {:>8} {:>24}",
        "logger", "producers", "lines/s", "p50 ns", "p99 ns", "ratio lines/s p50 p99"
    );
    for producers in [1, 2] {
        let rows: Vec<_> = subjects
            .iter()
            .map(|s| {
                let rate = throughput(s, producers, per_thread);
                let (p50, p99) = caller_cost(s, producers, bursts);
                (s.name, rate, p50, p99)
            })
            .collect();
        let (_, peer_rate, peer_p50, peer_p99) = rows[1];
        for (name, rate, p50, p99) in rows {
            let ratio = format!(
                "{:.2}x {:.2}x {:.2}x",
                rate / peer_rate,
                p50 as f64 / peer_p50 as f64,
                p99 as f64 / peer_p99 as f64
            );
            println!("{name:<18} {producers:>9} {rate:>12.0} {p50:>8} {p99:>8} {ratio:>24}");
        }
    }
}
