//! The accept strategies side by side: kingpin's echo server with 2 IO threads (one process,
//! pinned to CPU 1) under the churn load (connect, echo 16 B, close; 32 at a time), once per
//! strategy — connections a second, server CPU per connection, and how evenly the threads
//! shared the accepting (each thread's count, printed by the server when it stops).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::load::churn;
use crate::measure::Sample;
use crate::server::{Server, SERVE_ENV};

/// The strategies, as `echo_server --accept` names them, the default first.
pub const STRATEGIES: [&str; 3] = ["mutex", "exclusive", "reuseport"];

/// IO threads of the server under test.
pub const THREADS: usize = 2;

/// Clients connecting at once.
pub const CONCURRENCY: usize = 32;

/// Per strategy: each repetition's sample and connections accepted per thread.
pub type AcceptResults = BTreeMap<&'static str, Vec<(Sample, Vec<u64>)>>;

/// Starts the echo server with `strategy`, pinned to CPU 1 when `pin`.
pub fn start(strategy: &str, pin: bool, log: &Path) -> io::Result<Server> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(SERVE_ENV, "kingpin").args([
        "--addr",
        "127.0.0.1:0",
        "--threads",
        &THREADS.to_string(),
        "--accept",
        strategy,
        "--max-conns-per-ip",
        "0",
    ]);
    Server::spawn(&mut cmd, &format!("kingpin, accept {strategy}"), pin, log)
}

/// Runs the churn load on `server`, stops it, and reads how many connections each thread took.
pub fn measure(server: Server, warmup: Duration, window: Duration) -> io::Result<(Sample, Vec<u64>)> {
    let sample = churn(&server, CONCURRENCY, warmup, window)?;
    let said = server.interrupt()?;
    let counts = said
        .lines()
        .find_map(|l| l.split_once("accepted per IO thread:"))
        .map(|(_, n)| n.split_whitespace().filter_map(|x| x.parse().ok()).collect::<Vec<u64>>())
        .filter(|c| c.len() == THREADS)
        .ok_or_else(|| io::Error::other(format!("no per-thread counts in {said:?}")))?;
    Ok((sample, counts))
}

/// The busiest thread's count over the fair share (1.00: perfectly even; THREADS: one thread
/// took everything).
fn imbalance(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(0);
    if total == 0 {
        f64::NAN
    } else {
        max as f64 * counts.len() as f64 / total as f64
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The report's section.
pub fn section(results: &AcceptResults) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "\n### Accept strategies: churn with {THREADS} IO threads, {CONCURRENCY} clients at once\n\n\
         One kingpin echo server process with {THREADS} IO threads (both pinned to CPU 1), \
         connect, echo 16 B, close, {CONCURRENCY} at a time; medians over the repetitions. \
         \"Busiest thread\" is the largest per-thread count of accepted connections over the fair \
         share (1.00×: even; {THREADS}.00×: one thread took all).\n"
    );
    let _ = writeln!(
        r,
        "| strategy | conns/s | p99 µs | CPU µs/conn | busiest thread | accepted per thread (last run) |\n|---|---:|---:|---:|---:|---|"
    );
    for name in STRATEGIES {
        let Some(runs) = results.get(name) else { continue };
        let m = |f: fn(&Sample) -> f64| median(runs.iter().map(|(s, _)| f(s)).collect());
        let last = runs.last().map_or(String::new(), |(_, c)| format!("{c:?}"));
        let _ = writeln!(
            r,
            "| {name}{} | {:.0} | {:.1} | {:.2} | {:.2}× | {last} |",
            if name == STRATEGIES[0] { " (default)" } else { "" },
            m(|s| s.msgs_per_s),
            m(|s| s.p99_us),
            m(|s| s.cpu_us_per_msg),
            median(runs.iter().map(|(_, c)| imbalance(c)).collect()),
        );
    }
    r
}
