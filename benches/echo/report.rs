//! The Markdown report of a run: the machine, one table per shape, the scaling table, the
//! HTTP table, and the targets with their verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::http::HttpKind;
use crate::measure::{median, Sample};
use crate::plan::{thousands, Plan, Shape};
use crate::server::{online_cpus, Kind};

/// Every measured run: (shape index, server) → samples; scaling points are indices past the
/// shapes.
pub type Results = BTreeMap<(usize, Kind), Vec<Sample>>;

/// System calls per message, by call.
type Calls = Vec<(String, f64)>;

/// The HTTP runs: server → samples.
pub type HttpResults = BTreeMap<HttpKind, Vec<Sample>>;

/// The median of `f` over the samples of `kind` on run `index`.
pub fn med(results: &Results, index: usize, kind: Kind, f: fn(&Sample) -> Option<f64>) -> f64 {
    results.get(&(index, kind)).map_or(f64::NAN, |v| median(v.iter().filter_map(f).collect()))
}

/// The median server CPU per message of `kind` on run `index`.
pub fn cpu_of(results: &Results, index: usize, kind: Kind) -> f64 {
    med(results, index, kind, |s| Some(s.cpu_us_per_msg))
}

fn http_med(results: &HttpResults, kind: HttpKind, f: fn(&Sample) -> f64) -> f64 {
    results.get(&kind).map_or(f64::NAN, |v| median(v.iter().map(f).collect()))
}

/// The median over repetitions of `a`'s CPU per message divided by `b`'s in the same
/// repetition: servers of one repetition run back to back, so drift between repetitions
/// cancels out of the ratio.
fn paired(a: Option<&Vec<Sample>>, b: Option<&Vec<Sample>>) -> f64 {
    let (Some(a), Some(b)) = (a, b) else { return f64::NAN };
    median(a.iter().zip(b).map(|(x, y)| x.cpu_us_per_msg / y.cpu_us_per_msg).collect())
}

/// [`paired`] for two echo servers on run `index`.
pub fn paired_cpu(results: &Results, index: usize, a: Kind, b: Kind) -> f64 {
    paired(results.get(&(index, a)), results.get(&(index, b)))
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel =
        fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |k| k.trim().to_string());
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map_or_else(|| "unknown".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    // Online CPUs (not `available_parallelism`: the generator is pinned to one by now).
    format!("{} CPUs ({cpu}), Linux {kernel}, {rustc}", online_cpus())
}

pub fn fmt(x: f64, digits: usize) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.digits$}")
    }
}

fn times(r: f64) -> String {
    if r.is_nan() {
        "–".into()
    } else {
        format!("{r:.2}×")
    }
}

/// The servers that ran at all, in report order.
pub fn kinds_seen(results: &Results) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = results.keys().map(|(_, k)| *k).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// The report of a run; `http_skipped` says why the HTTP shape did not run, if it did not.
pub fn report(
    plan: &Plan,
    names: &[String],
    first_scale: usize,
    results: &Results,
    http: &HttpResults,
    http_skipped: Option<&str>,
    took: Duration,
) -> String {
    let kinds = kinds_seen(results);
    let mut r = String::new();
    let _ = writeln!(r, "Machine: {}.  ", machine());
    let _ = writeln!(
        r,
        "Command: `{}` ({} repetitions, servers alternating within each; medians; this run took {:.0} s).  ",
        if plan.docs { "make bench" } else { "BENCH_QUICK=1 cargo bench --bench echo" },
        plan.reps,
        took.as_secs_f64()
    );
    let _ = writeln!(
        r,
        "Each server is one process with **1 IO thread**, pinned to CPU 1; the load generator (one \
         thread, mio; `wrk -t1` for HTTP) is pinned to CPU 0. Latency is the round trip the \
         generator sees; server CPU is the server process's CPU time (user + system, all threads; \
         its CPU-time clock, as /proc/PID/stat counts it but in ns) over the measured window, \
         divided by the messages echoed. Ratios compare server CPU per message (lower is better). \
         \"kingpin\" is the default configuration ({}-triggered epoll); the {}-triggered row is \
         the same server with the other mode.\n",
        crate::DEFAULT_EPOLL,
        crate::ALT_EPOLL
    );
    for (index, name) in names.iter().enumerate().take(first_scale) {
        let idle = matches!(plan.shapes[index].1, Shape::Idle { .. });
        let _ = writeln!(r, "### {name}\n");
        let unit = if matches!(plan.shapes[index].1, Shape::Churn { .. }) { "conns/s" } else { "msgs/s" };
        if idle {
            let _ = writeln!(
                r,
                "| server | RSS/conn idle | RSS/conn after echo | echoes/s | p50 µs | p99 µs | CPU µs/echo | vs tokio | vs bare loop |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
        } else {
            let _ = writeln!(
                r,
                "| server | {unit} | p50 µs | p99 µs | CPU µs/msg | vs tokio | vs bare loop |\n|---|---:|---:|---:|---:|---:|---:|"
            );
        }
        for &kind in &kinds {
            let cpu = cpu_of(results, index, kind);
            let common = format!(
                "{} | {} | {} | {} | {} | {}",
                fmt(med(results, index, kind, |s| Some(s.msgs_per_s)), 0),
                fmt(med(results, index, kind, |s| Some(s.p50_us)), 1),
                fmt(med(results, index, kind, |s| Some(s.p99_us)), 1),
                fmt(cpu, 2),
                times(paired_cpu(results, index, kind, Kind::Tokio)),
                times(paired_cpu(results, index, kind, Kind::Mio))
            );
            if idle {
                let _ = writeln!(
                    r,
                    "| {} | {} B | {} B | {common} |",
                    kind.name(),
                    fmt(med(results, index, kind, |s| s.rss_idle), 0),
                    fmt(med(results, index, kind, |s| s.rss_after), 0)
                );
            } else {
                let _ = writeln!(r, "| {} | {common} |", kind.name());
            }
        }
        let _ = writeln!(r);
    }
    let counted: Vec<(usize, Kind, &Calls)> = results
        .iter()
        .filter_map(|((index, kind), v)| Some((*index, *kind, v.iter().find_map(|s| s.syscalls.as_ref())?)))
        .collect();
    if !counted.is_empty() {
        let _ = writeln!(
            r,
            "### System calls per message (ping-pong, `perf stat` on the syscall tracepoints)\n\n\
             Counted in a separate 0.6 s run per server and shape (connection set-up included): \
             unlike CPU time, these do not move with the machine's load.\n"
        );
        let _ = writeln!(r, "| shape | server | total | by call |\n|---|---|---:|---|");
        for (index, kind, calls) in counted {
            let total: f64 = calls.iter().map(|(_, n)| n).sum();
            let by: Vec<String> =
                calls.iter().filter(|(_, n)| *n >= 0.005).map(|(name, n)| format!("{name} {n:.2}")).collect();
            let _ = writeln!(r, "| {} | {} | {total:.2} | {} |", names[index], kind.name(), by.join(", "));
        }
        let _ = writeln!(r);
    }
    let _ = writeln!(r, "### Server CPU µs per message as connections grow (ping-pong, 100 B)\n");
    let header: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        r,
        "| connections | {} | kingpin vs tokio | kingpin msgs/s |\n|---:|{}---:|---:|",
        header.join(" | "),
        "---:|".repeat(kinds.len())
    );
    for (i, n) in plan.scaling.iter().enumerate() {
        let index = first_scale + i;
        let cells: Vec<String> = kinds.iter().map(|&k| fmt(cpu_of(results, index, k), 2)).collect();
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} |",
            thousands(*n),
            cells.join(" | "),
            times(paired_cpu(results, index, Kind::Kingpin, Kind::Tokio)),
            fmt(med(results, index, Kind::Kingpin, |s| Some(s.msgs_per_s)), 0)
        );
    }
    let _ = writeln!(r, "\n### HTTP \"hello\", `wrk -t1 -c{}` keep-alive\n", plan.http.map_or(0, |h| h.0));
    match http_skipped {
        Some(why) => {
            let _ = writeln!(r, "Not measured: {why}.");
        }
        None => {
            let _ = writeln!(
                r,
                "| server | requests/s | p50 µs | p99 µs | CPU µs/request | vs nginx |\n|---|---:|---:|---:|---:|---:|"
            );
            for kind in HttpKind::all().into_iter().filter(|k| http.contains_key(k)) {
                let cpu = http_med(http, kind, |s| s.cpu_us_per_msg);
                let _ = writeln!(
                    r,
                    "| {} | {} | {} | {} | {} | {} |",
                    kind.name(),
                    fmt(http_med(http, kind, |s| s.msgs_per_s), 0),
                    fmt(http_med(http, kind, |s| s.p50_us), 1),
                    fmt(http_med(http, kind, |s| s.p99_us), 1),
                    fmt(cpu, 2),
                    times(paired(http.get(&kind), http.get(&HttpKind::Nginx)))
                );
            }
        }
    }
    let _ = writeln!(
        r,
        "\nRSS per connection is the server's VmRSS growth while the idle connections were opened, \
         divided by their number: user-space memory only (kernel socket buffers are not in RSS)."
    );
    // The targets and the plots belong to the full run; a smoke or partial run prints figures.
    if plan.docs {
        targets(plan, results, http, http_skipped, &mut r);
        let _ = writeln!(
            r,
            "\n![server CPU per message](../pictures/bench_cpu_per_msg.svg)\n\n\
             ![latency and CPU as connections grow](../pictures/bench_scaling.svg)"
        );
    }
    r
}

/// The performance targets, each with its measured figure and verdict.
fn targets(plan: &Plan, results: &Results, http: &HttpResults, http_skipped: Option<&str>, r: &mut String) {
    let _ = writeln!(r, "\n### Targets\n");
    let _ = writeln!(
        r,
        "Ratios are paired: the median over repetitions of kingpin's CPU per message divided by the \
         peer's in the same repetition.\n"
    );
    let _ = writeln!(r, "| target | measured | limit | verdict |\n|---|---:|---:|---|");
    let mut check = |what: String, value: f64, limit: f64, unit: &str| {
        let verdict = if value.is_nan() || limit.is_nan() {
            "not measured".to_string()
        } else if value <= limit {
            "**met**".to_string()
        } else {
            format!("**unmet** by {:.1}%", (value / limit - 1.0) * 100.0)
        };
        let _ = writeln!(r, "| {what} | {}{unit} | ≤ {}{unit} | {verdict} |", fmt(value, 2), fmt(limit, 2));
    };
    for (index, (name, shape)) in plan.shapes.iter().enumerate() {
        match shape {
            Shape::PingPong { .. } => {
                check(
                    format!("{name}: CPU/msg vs tokio"),
                    paired_cpu(results, index, Kind::Kingpin, Kind::Tokio),
                    0.95,
                    "×",
                );
                check(
                    format!("{name}: CPU/msg vs bare loop"),
                    paired_cpu(results, index, Kind::Kingpin, Kind::Mio),
                    1.0,
                    "×",
                );
                if results.contains_key(&(index, Kind::Cpp)) {
                    check(
                        format!("{name}: C++ echo on the C API, CPU/msg vs the Rust echo_server"),
                        paired_cpu(results, index, Kind::Cpp, Kind::Kingpin),
                        1.05,
                        "×",
                    );
                }
            }
            Shape::Churn { .. } => {}
            Shape::Idle { .. } => check(
                "idle connection: user-space RSS".into(),
                med(results, index, Kind::Kingpin, |s| s.rss_idle),
                2048.0,
                " B",
            ),
        }
    }
    if http_skipped.is_none() {
        check(
            "HTTP hello: CPU/request vs nginx".into(),
            paired(http.get(&HttpKind::Kingpin), http.get(&HttpKind::Nginx)),
            0.85,
            "×",
        );
    }
}
