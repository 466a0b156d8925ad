//! Benchmark of blocking jobs handed off an IO thread and their results brought back to it:
//! kingpin's `LoopCtx::spawn_blocking` (worker pool, completion on the loop) against tokio's
//! `spawn_blocking` awaited by a task (its blocking pool, the result back through the join
//! handle), both with 1 IO thread and 2 workers, in the same run, alternating.
//!
//! Two shapes: one job in flight at a time (the round trip: submit → worker → back on the
//! loop), and 64 in flight (throughput). For each it prints jobs/s, wall time per job and the
//! process's CPU time per job (user + system, all threads), and the CPU ratio kingpin / tokio,
//! the median over the repetitions of each repetition's ratio. `BENCH_QUICK=1` runs one short
//! repetition; without `--bench` (as `cargo test --all-targets` runs it) it only smoke-tests.
//!
//! Run: `cargo bench --bench jobs` (or `BENCH_QUICK=1 cargo bench --bench jobs`;
//! `BENCH_IN_FLIGHT=1` for one shape).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use kingpin::{EpollTPServer, IoHandler, LoopCtx, ServerConfig};
use nix::time::{clock_gettime, ClockId};

/// The work of one job: a few hundred nanoseconds of arithmetic, so that the hand-off is what
/// is measured.
fn work(seed: u64) -> u64 {
    (0..64u64).fold(seed, |a, i| a.wrapping_mul(6364136223846793005).wrapping_add(i))
}

/// CPU time used by this process so far (every thread).
fn cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// One measured window.
#[derive(Clone, Copy)]
struct Sample {
    jobs: u64,
    wall: Duration,
    cpu: Duration,
}

impl Sample {
    fn per_s(&self) -> f64 {
        self.jobs as f64 / self.wall.as_secs_f64()
    }
    fn wall_us(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 / self.jobs.max(1) as f64
    }
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.jobs.max(1) as f64
    }
}

/// Counts completed jobs; `stop` ends the run.
#[derive(Default)]
struct Shared {
    done: AtomicU64,
    stop: AtomicBool,
}

/// The kingpin side: `in_flight` chains of jobs started in `on_start`, each completion on the
/// loop submitting the next.
struct Chains {
    shared: Arc<Shared>,
    in_flight: usize,
    started: mpsc::Sender<()>,
}

fn submit(ctx: &mut LoopCtx<'_, Chains>, seed: u64) {
    let queued = ctx.spawn_blocking(
        move |_| work(seed),
        |me: &mut Chains, ctx, r| {
            let v = r.expect("a job's value");
            me.shared.done.fetch_add(1, Ordering::Relaxed);
            if !me.shared.stop.load(Ordering::Relaxed) {
                submit(ctx, black_box(v));
            }
        },
    );
    queued.expect("the queue has room for every chain");
}

impl IoHandler for Chains {
    type ConnState = ();

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        for i in 0..self.in_flight {
            submit(ctx, i as u64);
        }
        let _ = self.started.send(());
    }
}

/// Runs kingpin for `warmup` + `window` with `in_flight` chains.
fn kingpin_run(in_flight: usize, warmup: Duration, window: Duration) -> Sample {
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel();
    let s = shared.clone();
    let config = ServerConfig::default().threads(1).worker_threads(2).worker_queue(1024);
    let server = EpollTPServer::from_fn(config, move || Chains { shared: s.clone(), in_flight, started: tx.clone() })
        .start()
        .expect("server");
    rx.recv_timeout(Duration::from_secs(10)).expect("the loop started");
    let sample = measure(&shared, warmup, window);
    shared.stop.store(true, Ordering::Relaxed);
    server.shutdown();
    server.join().expect("clean shutdown");
    sample
}

/// Runs tokio for `warmup` + `window` with `in_flight` tasks, each awaiting one
/// `spawn_blocking` after another.
fn tokio_run(in_flight: usize, warmup: Duration, window: Duration) -> Sample {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).max_blocking_threads(2).build().expect("runtime");
    let shared = Arc::new(Shared::default());
    for i in 0..in_flight {
        let shared = shared.clone();
        rt.spawn(async move {
            let mut seed = i as u64;
            while !shared.stop.load(Ordering::Relaxed) {
                // At the runtime's shutdown the last jobs are cancelled: the chain ends.
                let Ok(next) = tokio::task::spawn_blocking(move || work(seed)).await else { break };
                seed = next;
                shared.done.fetch_add(1, Ordering::Relaxed);
                black_box(seed);
            }
        });
    }
    let sample = measure(&shared, warmup, window);
    shared.stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(10));
    sample
}

/// Waits out the warm-up, then counts the jobs completed and the CPU used over `window`.
fn measure(shared: &Shared, warmup: Duration, window: Duration) -> Sample {
    std::thread::sleep(warmup);
    let (jobs0, cpu0, t0) = (shared.done.load(Ordering::Relaxed), cpu(), Instant::now());
    std::thread::sleep(window);
    let (jobs1, cpu1, wall) = (shared.done.load(Ordering::Relaxed), cpu(), t0.elapsed());
    Sample { jobs: jobs1 - jobs0, wall, cpu: cpu1 - cpu0 }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let (reps, warmup, window) = if smoke {
        (1, Duration::from_millis(20), Duration::from_millis(50))
    } else if quick {
        (1, Duration::from_millis(200), Duration::from_millis(500))
    } else {
        (5, Duration::from_millis(300), Duration::from_secs(2))
    };
    println!("blocking jobs, 1 IO thread + 2 workers: kingpin LoopCtx::spawn_blocking vs tokio spawn_blocking");
    println!("({reps} repetition(s), {window:?} each, alternating; CPU is the whole process's)\n");
    println!("| in flight | runtime | jobs/s | wall µs/job | CPU µs/job | CPU vs tokio |");
    println!("|---:|---|---:|---:|---:|---:|");
    // `BENCH_IN_FLIGHT=N` runs one shape only (e.g. under a profiler).
    let shapes: Vec<usize> = match std::env::var("BENCH_IN_FLIGHT").ok().and_then(|v| v.parse().ok()) {
        Some(n) => vec![n],
        None => vec![1, 64],
    };
    for in_flight in shapes {
        let (mut k, mut t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..reps {
            // Alternate which goes first, so drift in the machine's speed hits both alike.
            let (a, b) = if rep % 2 == 0 {
                let a = kingpin_run(in_flight, warmup, window);
                (a, tokio_run(in_flight, warmup, window))
            } else {
                let b = tokio_run(in_flight, warmup, window);
                (kingpin_run(in_flight, warmup, window), b)
            };
            ratios.push(a.cpu_us() / b.cpu_us());
            k.push(a);
            t.push(b);
        }
        for (name, samples) in [("kingpin", &k), ("tokio", &t)] {
            let ratio = if name == "kingpin" { format!("{:.2}×", median(ratios.clone())) } else { "1.00×".into() };
            println!(
                "| {in_flight} | {name} | {:.0} | {:.2} | {:.2} | {ratio} |",
                median(samples.iter().map(Sample::per_s).collect()),
                median(samples.iter().map(Sample::wall_us).collect()),
                median(samples.iter().map(Sample::cpu_us).collect()),
            );
        }
    }
}
