//! What a run measures: throughput, latency percentiles and server CPU per message over a
//! window that opens after a warm-up.

use std::time::{Duration, Instant};

use crate::server::Server;

/// What one run of one shape against one server measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_msg: f64,
    /// Idle shape: server RSS growth per connection (bytes), idle and after the echo.
    pub rss_idle: Option<f64>,
    pub rss_after: Option<f64>,
    /// Messages counted in the window.
    pub msgs: u64,
    /// System calls per message, by call, from a separate counted run (where `perf` works).
    pub syscalls: Option<Vec<(String, f64)>>,
}

pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The measured span of a load run: it starts after the warm-up and ends `window` later,
/// recording the server's CPU time and the wall time in between.
pub struct Window {
    from: Instant,
    end: Instant,
    measuring: bool,
    pub done: bool,
    cpu0: Duration,
    t0: Instant,
    pub cpu_used: Duration,
    pub elapsed: Duration,
}

impl Window {
    pub fn new(now: Instant, warmup: Duration, window: Duration) -> Self {
        let from = now + warmup;
        Window {
            from,
            end: from + window,
            measuring: false,
            done: false,
            cpu0: Duration::ZERO,
            t0: now,
            cpu_used: Duration::ZERO,
            elapsed: Duration::ZERO,
        }
    }

    /// Opens or closes the window as `now` passes its bounds.
    pub fn tick(&mut self, now: Instant, server: &Server) {
        if !self.measuring && now >= self.from {
            self.measuring = true;
            self.cpu0 = server.cpu();
            self.t0 = Instant::now();
        }
        if self.measuring && !self.done && now >= self.end {
            self.done = true;
            self.cpu_used = server.cpu() - self.cpu0;
            self.elapsed = now - self.t0;
        }
    }

    /// Whether results count now.
    pub fn counting(&self) -> bool {
        self.measuring && !self.done
    }

    /// When a run gives up waiting for stragglers.
    pub fn hard_stop(&self) -> Instant {
        self.end + Duration::from_secs(5)
    }
}

pub fn sample(msgs: u64, elapsed: Duration, cpu: Duration, mut lat_ns: Vec<u32>) -> Sample {
    lat_ns.sort_unstable();
    Sample {
        msgs_per_s: msgs as f64 / elapsed.as_secs_f64(),
        p50_us: percentile(&lat_ns, 0.50),
        p99_us: percentile(&lat_ns, 0.99),
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / msgs.max(1) as f64,
        msgs,
        ..Sample::default()
    }
}

pub fn nanos(d: Duration) -> u32 {
    d.as_nanos().min(u32::MAX as u128) as u32
}

/// The median of the values that are numbers (NaN if none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
