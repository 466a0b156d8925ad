//! Integration tests of the asynchronous logger, each on its own (non-global) logger.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kingpin::logger::{AsyncLogger, LogLine, LoggerBuilder};
use log::{Level, LevelFilter, Log, Record};

/// Bound on every wait of these tests.
const BOUND: Duration = Duration::from_secs(30);

/// A writer whose bytes the test can read.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A writer that blocks in `write` until the test opens its gate (or `BOUND` passes).
#[derive(Clone, Default)]
struct Stalled {
    gate: Arc<(Mutex<bool>, Condvar)>,
    out: Capture,
}

impl Stalled {
    fn open(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

impl Write for Stalled {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let (lock, cv) = &*self.gate;
        let _open = cv.wait_timeout_while(lock.lock().unwrap(), BOUND, |open| !*open).unwrap();
        self.out.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn builder(w: impl Write + Send + 'static) -> LoggerBuilder {
    LoggerBuilder::new().env_var(None).level(LevelFilter::Trace).writer(w)
}

fn log_at(logger: &AsyncLogger, level: Level, target: &str, args: std::fmt::Arguments<'_>) {
    logger.log(&Record::builder().level(level).target(target).args(args).build());
}

fn parse_all(text: &str) -> Vec<LogLine<'_>> {
    text.lines().map(|l| LogLine::parse(l).unwrap_or_else(|| panic!("bad line {l:?}"))).collect()
}

/// Runs `f` on `n` named threads and joins them, failing (not hanging) after `BOUND`.
fn on_threads(n: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let (f, tx) = (f.clone(), tx.clone());
        thread::Builder::new()
            .name(format!("p{i}"))
            .spawn(move || {
                f(i);
                tx.send(()).unwrap();
            })
            .unwrap();
    }
    for _ in 0..n {
        rx.recv_timeout(BOUND).expect("a producer thread did not finish in time");
    }
}

#[test]
fn blocking_mode_keeps_every_line_once_in_order() {
    const N: usize = 4;
    const M: usize = 20_000;
    let out = Capture::default();
    let logger = Arc::new(builder(out.clone()).blocking(true).buffer_capacity(4096).build().unwrap());
    let l = logger.clone();
    on_threads(N, move |i| {
        for j in 0..M {
            log_at(&l, Level::Info, "order", format_args!("t{i} n{j}"));
        }
    });
    assert!(AsyncLogger::flush(&logger));
    let text = out.text();
    let mut next = HashMap::new();
    for line in parse_all(&text) {
        let (t, n) = line.message.split_once(' ').unwrap();
        assert_eq!(line.thread_name.unwrap(), &t.replace('t', "p"));
        let expected = next.entry(t.to_owned()).or_insert(0usize);
        assert_eq!(n, format!("n{expected}"), "thread {t} out of order");
        *expected += 1;
    }
    assert_eq!(next.len(), N);
    assert!(next.values().all(|&n| n == M), "{next:?}");
    assert_eq!(logger.stats().dropped, 0);
}

#[test]
fn drop_mode_never_blocks_on_a_stalled_sink_and_reports_drops() {
    let sink = Stalled::default();
    let logger = Arc::new(builder(sink.clone()).buffer_capacity(4096).build().unwrap());
    log_at(&logger, Level::Info, "t", format_args!("first"));
    assert!(!logger.flush_within(Duration::from_millis(200)), "the backend should be stuck in write");
    const N: usize = 2;
    const M: usize = 10_000;
    let l = logger.clone();
    let start = Instant::now();
    on_threads(N, move |i| {
        for j in 0..M {
            log_at(&l, Level::Warn, "t", format_args!("t{i} n{j}"));
        }
    });
    assert!(start.elapsed() < BOUND);
    sink.open();
    assert!(AsyncLogger::flush(&logger));
    let text = sink.out.text();
    let lines = parse_all(&text);
    let mut dropped = 0;
    let mut kept = 0;
    for l in &lines {
        if l.target == "kingpin::logger" {
            let n = l.message.strip_prefix("dropped ").unwrap().split(' ').next().unwrap();
            assert!(l.message.ends_with("(backend behind)"));
            assert_eq!(l.level, Level::Warn);
            dropped += n.parse::<u64>().unwrap();
        } else {
            kept += 1;
        }
    }
    assert!(dropped > 0);
    assert_eq!(kept + dropped, (N * M + 1) as u64);
    assert_eq!(logger.stats().dropped, dropped);
}

#[test]
fn shutdown_flushes_everything_including_exited_threads() {
    let out = Capture::default();
    let logger = Arc::new(builder(out.clone()).flush_interval(Duration::from_secs(3600)).build().unwrap());
    let l = logger.clone();
    on_threads(3, move |i| {
        for j in 0..1000 {
            log_at(&l, Level::Debug, "t", format_args!("t{i} n{j}"));
        }
    });
    log_at(&logger, Level::Error, "t", format_args!("main"));
    assert!(out.text().is_empty(), "nothing should be written before the timer or a flush");
    assert!(logger.shutdown());
    assert_eq!(parse_all(&out.text()).len(), 3001);
    log_at(&logger, Level::Error, "t", format_args!("after shutdown"));
    let text = out.text();
    assert_eq!(parse_all(&text).last().unwrap().message, "after shutdown");
    drop(logger);
}

#[test]
fn drop_of_the_logger_flushes() {
    let out = Capture::default();
    let logger = builder(out.clone()).flush_interval(Duration::from_secs(3600)).build().unwrap();
    for j in 0..500 {
        log_at(&logger, Level::Info, "t", format_args!("n{j}"));
    }
    drop(logger);
    assert_eq!(parse_all(&out.text()).len(), 500);
}

#[test]
fn line_format_fields() {
    let out = Capture::default();
    let logger = Arc::new(builder(out.clone()).build().unwrap());
    let l = logger.clone();
    thread::Builder::new()
        .name("fmt-thread".into())
        .spawn(move || {
            log_at(&l, Level::Warn, "my::target", format_args!("x={} ok", 5));
            log_at(&l, Level::Trace, "other", format_args!("plain"));
        })
        .unwrap()
        .join()
        .unwrap();
    log_at(&logger, Level::Error, "main", format_args!("from main"));
    assert!(AsyncLogger::flush(&logger));
    let text = out.text();
    assert!(text.ends_with('\n'));
    let lines = parse_all(&text);
    assert_eq!(lines.len(), 3);
    let (a, b, c) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(
        (a.level, a.target, a.message, a.thread_name),
        (Level::Warn, "my::target", "x=5 ok", Some("fmt-thread"))
    );
    assert_eq!((b.level, b.target, b.message), (Level::Trace, "other", "plain"));
    assert_eq!(a.tid, b.tid);
    assert_ne!(a.tid, c.tid);
    assert_eq!(c.level, Level::Error);
    let raw = text.lines().next().unwrap();
    assert_eq!(&raw[26..], format!(" WARN  [tid {} fmt-thread] my::target: x=5 ok", a.tid));
    let stamp = chrono::NaiveDateTime::parse_from_str(a.timestamp, "%Y-%m-%d %H:%M:%S%.6f").unwrap();
    let skew = chrono::Local::now().naive_local() - stamp;
    assert!(skew.num_seconds().abs() < 60, "timestamp {stamp} is not local now");
}

#[test]
fn level_filter_at_run_time_and_from_the_environment() {
    let out = Capture::default();
    let logger = builder(out.clone()).level(LevelFilter::Warn).build().unwrap();
    log_at(&logger, Level::Info, "t", format_args!("hidden"));
    log_at(&logger, Level::Warn, "t", format_args!("shown"));
    logger.set_level(LevelFilter::Debug);
    log_at(&logger, Level::Debug, "t", format_args!("now shown"));
    log_at(&logger, Level::Trace, "t", format_args!("hidden"));
    logger.set_level(LevelFilter::Off);
    log_at(&logger, Level::Error, "t", format_args!("hidden"));
    assert!(AsyncLogger::flush(&logger));
    let text = out.text();
    let msgs: Vec<_> = parse_all(&text).iter().map(|l| l.message).collect();
    assert_eq!(msgs, ["shown", "now shown"]);

    std::env::set_var("KINGPIN_LOG_TEST_LEVEL", "ERROR");
    let env = LoggerBuilder::new().env_var(Some("KINGPIN_LOG_TEST_LEVEL")).writer(io::sink()).build().unwrap();
    assert_eq!(env.level(), LevelFilter::Error);
    std::env::set_var("KINGPIN_LOG_TEST_LEVEL", "");
    let blank = LoggerBuilder::new().env_var(Some("KINGPIN_LOG_TEST_LEVEL")).level(LevelFilter::Debug);
    assert_eq!(blank.writer(io::sink()).build().unwrap().level(), LevelFilter::Debug);
    // A value that is not a level is an error naming it and the valid ones, not a silent default.
    std::env::set_var("KINGPIN_LOG_TEST_LEVEL", "verbose");
    let bad = LoggerBuilder::new().env_var(Some("KINGPIN_LOG_TEST_LEVEL")).level(LevelFilter::Debug);
    let err = bad.writer(io::sink()).build().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(
        msg.contains("KINGPIN_LOG_TEST_LEVEL=\"verbose\"") && msg.contains("error, warn, info, debug, trace"),
        "{msg}"
    );
}

/// A writer that fails its first `fail` writes, then captures.
struct Flaky {
    fail: usize,
    out: Capture,
}

impl Write for Flaky {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.fail > 0 {
            self.fail -= 1;
            return Err(io::Error::other("disk on fire"));
        }
        self.out.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_is_counted_and_reported_and_the_backend_goes_on() {
    let out = Capture::default();
    let logger = builder(Flaky { fail: 2, out: out.clone() }).build().unwrap();
    for round in 0..3 {
        log_at(&logger, Level::Info, "t", format_args!("round {round}"));
        assert!(AsyncLogger::flush(&logger));
    }
    assert_eq!(logger.stats().sink_errors, 2);
    let text = out.text();
    let msgs: Vec<_> = parse_all(&text).iter().map(|l| l.message.to_owned()).collect();
    assert_eq!(msgs.last().unwrap(), "round 2");
    assert!(msgs.iter().any(|m| m.starts_with("sink failed 2 times")), "{msgs:?}");
}

#[test]
fn a_stalled_sink_bounds_flush() {
    let sink = Stalled::default();
    let logger = builder(sink.clone()).flush_timeout(Duration::from_millis(100)).build().unwrap();
    log_at(&logger, Level::Info, "t", format_args!("x"));
    let start = Instant::now();
    assert!(!logger.flush());
    assert!(start.elapsed() < BOUND);
    sink.open();
    assert!(logger.flush_within(BOUND));
    assert_eq!(parse_all(&sink.out.text()).len(), 1);
}

/// Displays by logging to the logger it points at: re-entrant logging.
struct Reentrant<'a>(&'a AsyncLogger);

impl std::fmt::Display for Reentrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        log_at(self.0, Level::Info, "inner", format_args!("nested"));
        f.write_str("outer")
    }
}

#[test]
fn reentrant_logging_does_not_deadlock() {
    let out = Capture::default();
    let logger = builder(out.clone()).build().unwrap();
    log_at(&logger, Level::Info, "outer", format_args!("{}", Reentrant(&logger)));
    assert!(AsyncLogger::flush(&logger));
    let text = out.text();
    let mut msgs: Vec<_> = parse_all(&text).iter().map(|l| l.message).collect();
    msgs.sort_unstable();
    assert_eq!(msgs, ["nested", "outer"]);
}

#[test]
fn file_sink_rotates_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.log");
    let logger = LoggerBuilder::new()
        .env_var(None)
        .file(&path)
        .rotate(4096, 2)
        .blocking(true)
        .buffer_capacity(2048)
        .build()
        .unwrap();
    for j in 0..1000 {
        log_at(&logger, Level::Info, "rot", format_args!("line {j:05}"));
    }
    assert!(logger.shutdown());
    let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() <= 4096);
        assert!(parse_all(&text).iter().all(|l| l.target == "rot"));
    }
    let live = std::fs::read_to_string(&path).unwrap();
    assert_eq!(parse_all(&live).last().unwrap().message, "line 00999");
}
