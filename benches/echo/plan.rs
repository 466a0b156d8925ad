//! The plan of a run: which shapes, how many repetitions, how long, where the report goes.

use std::path::PathBuf;
use std::time::Duration;

/// A load shape.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    PingPong { conns: usize, size: usize },
    Churn { concurrency: usize },
    Idle { conns: usize },
}

/// What a run measures, and how long.
pub struct Plan {
    pub reps: usize,
    pub warmup: Duration,
    pub window: Duration,
    pub scale_window: Duration,
    pub shapes: Vec<(String, Shape)>,
    pub scaling: Vec<usize>,
    pub out_dir: Option<PathBuf>,
    pub docs: bool,
    /// Substrings selecting servers and shapes (`BENCH_ONLY`, `BENCH_SHAPE`), for profiling.
    pub only: String,
    pub shape_filter: String,
    /// The HTTP shape: `wrk` keep-alive connections and the measured seconds (none: skipped).
    pub http: Option<(usize, Duration)>,
}

pub fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn plan() -> Plan {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from);
    let pp = |conns, size| {
        (format!("ping-pong {} × {}", thousands(conns), size_label(size)), Shape::PingPong { conns, size })
    };
    if smoke {
        return Plan {
            reps: 1,
            warmup: Duration::from_millis(20),
            window: Duration::from_millis(100),
            scale_window: Duration::from_millis(50),
            shapes: vec![
                pp(4, 100),
                ("churn".into(), Shape::Churn { concurrency: 4 }),
                ("idle".into(), Shape::Idle { conns: 50 }),
            ],
            scaling: vec![10],
            out_dir: None,
            docs: false,
            only: String::new(),
            shape_filter: String::new(),
            http: None,
        };
    }
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let shape_filter = std::env::var("BENCH_SHAPE").unwrap_or_default();
    let filtered = !only.is_empty() || !shape_filter.is_empty();
    let (reps, window, scale_window, idle_conns, scaling) = if quick {
        (1, Duration::from_millis(800), Duration::from_millis(400), 1_000, vec![10, 100, 1_000])
    } else {
        (3, Duration::from_millis(1500), Duration::from_millis(800), 15_000, vec![10, 100, 1_000, 10_000])
    };
    // More repetitions for an A/B of two servers (a filtered run); the report says how many.
    let reps = std::env::var("BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(reps);
    Plan {
        reps,
        warmup: Duration::from_millis(if quick { 200 } else { 300 }),
        window,
        scale_window,
        shapes: vec![
            pp(100, 100),
            pp(10, 16 * 1024),
            pp(1_000, 512),
            ("churn: connect, echo 16 B, close".into(), Shape::Churn { concurrency: 32 }),
            (
                format!("idle: {} connections, then each echoed once", thousands(idle_conns)),
                Shape::Idle { conns: idle_conns },
            ),
        ],
        scaling,
        // A partial run (filters) never overwrites the committed report.
        out_dir: Some(if quick || filtered { target.join("bench") } else { manifest.clone() }),
        docs: !quick && !filtered,
        only,
        shape_filter,
        http: Some((100, if quick { Duration::from_secs(1) } else { Duration::from_secs(3) })),
    }
}
