//! The HTTP shape: `wrk` keep-alive load on a "hello" response, against kingpin's
//! `examples/http_server` and nginx (`return 200`), each one process pinned to CPU 1 with
//! one worker, `wrk` pinned to CPU 0. Skipped, with the reason printed, where `wrk` or nginx
//! is not installed (`apt-get install wrk nginx-light`).

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::measure::Sample;
use crate::server::{child_setup, Server, SERVE_ENV};
use crate::wrk_time::micros;

/// An HTTP server under test.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum HttpKind {
    /// `examples/http_server.rs`, default epoll mode.
    Kingpin,
    /// The same with the other epoll mode.
    KingpinAlt,
    /// nginx with one worker process, `return 200 "Hello, kingpin!"`.
    Nginx,
    /// The binary named by `BENCH_BASELINE_HTTP` (an `http_server` built elsewhere).
    Baseline,
}

impl HttpKind {
    /// Every HTTP server of this run.
    pub fn all() -> Vec<HttpKind> {
        let mut kinds = vec![HttpKind::Kingpin, HttpKind::KingpinAlt, HttpKind::Nginx];
        if std::env::var_os(BASELINE_ENV).is_some() {
            kinds.push(HttpKind::Baseline);
        }
        kinds
    }

    pub fn name(self) -> &'static str {
        match self {
            HttpKind::Kingpin => "kingpin http_server",
            HttpKind::KingpinAlt if crate::ALT_EPOLL == "edge" => "kingpin http_server, edge-triggered",
            HttpKind::KingpinAlt => "kingpin http_server, level-triggered",
            HttpKind::Nginx => "nginx",
            HttpKind::Baseline => "kingpin http_server (baseline build)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            HttpKind::Kingpin => "kingpin",
            HttpKind::KingpinAlt => "kingpin-et",
            HttpKind::Nginx => "nginx",
            HttpKind::Baseline => "baseline",
        }
    }
}

/// A kingpin `http_server` binary from another build, run as one more server (before/after).
const BASELINE_ENV: &str = "BENCH_BASELINE_HTTP";

/// Why the HTTP shape cannot run here, if it cannot.
pub fn missing_tools() -> Option<String> {
    let have = |tool: &str, arg: &str| {
        Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    let mut missing = Vec::new();
    if !have("wrk", "--version") {
        missing.push("wrk");
    }
    if !have("nginx", "-v") {
        missing.push("nginx");
    }
    (!missing.is_empty()).then(|| format!("{} not installed (apt-get install wrk nginx-light)", missing.join(" and ")))
}

/// A free port on loopback (bound and released: nginx takes it a moment later).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts nginx in `dir` with one worker (no master), pinned to CPU 1 when `pin`.
fn start_nginx(dir: &Path, pin: bool) -> io::Result<Server> {
    let port = free_port()?;
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {dir}/error.log warn;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  server_tokens off;\n  keepalive_requests 100000000;\n  keepalive_timeout 60s;\n\
           server {{\n    listen 127.0.0.1:{port};\n    default_type text/plain;\n\
             location = / {{ return 200 \"Hello, kingpin!\"; }}\n  }}\n}}\n",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.args(["-p", &dir.display().to_string(), "-c", &path.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    child_setup(&mut cmd, pin.then_some(1));
    let child = cmd.spawn()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Server::from_child(child, addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(io::Error::other(format!("nginx did not start listening: {log}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

/// Starts `kind`, pinned to CPU 1 when `pin`.
pub fn start(kind: HttpKind, pin: bool, dir: &Path, log: &Path) -> io::Result<Server> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(SERVE_ENV, "kingpin-http").args(["--addr", "127.0.0.1:0", "--threads", "1", "--max-conns-per-ip", "0"]);
    match kind {
        HttpKind::Nginx => start_nginx(dir, pin),
        HttpKind::Kingpin => Server::spawn(cmd.args(["--epoll", crate::DEFAULT_EPOLL]), kind.name(), pin, log),
        HttpKind::KingpinAlt => Server::spawn(cmd.args(["--epoll", crate::ALT_EPOLL]), kind.name(), pin, log),
        HttpKind::Baseline => {
            let mut cmd = Command::new(std::env::var_os(BASELINE_ENV).unwrap_or_default());
            Server::spawn(cmd.args(["--addr", "127.0.0.1:0", "--threads", "1"]), kind.name(), pin, log)
        }
    }
}

/// What `wrk` printed: requests done, and the latency percentiles (µs).
struct WrkRun {
    requests: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs `wrk` on one thread, pinned to CPU 0 when `pin`.
fn wrk(addr: SocketAddr, conns: usize, duration: Duration, pin: bool) -> io::Result<WrkRun> {
    let secs = duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", &format!("http://{addr}/")]);
    child_setup(&mut cmd, pin.then_some(0));
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr))));
    }
    let mut run = WrkRun { requests: 0, seconds: secs as f64, p50_us: f64::NAN, p99_us: f64::NAN };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", t, ..] => {
                run.requests = n.parse().unwrap_or(0);
                run.seconds = micros(t.trim_end_matches(',')) / 1e6;
            }
            ["50%", v] => run.p50_us = micros(v),
            ["99%", v] => run.p99_us = micros(v),
            _ => {}
        }
        if line.contains("Non-2xx") || line.contains("Socket errors") {
            return Err(io::Error::other(format!("wrk saw errors: {line}")));
        }
    }
    if run.requests == 0 {
        return Err(io::Error::other(format!("no requests in wrk's output: {text}")));
    }
    Ok(run)
}

/// Measures `server`: a short warm-up, then `window` of `wrk` with `conns` keep-alive
/// connections; server CPU per request over the measured run.
pub fn measure(server: &Server, conns: usize, window: Duration, pin: bool) -> io::Result<Sample> {
    wrk(server.addr, conns, Duration::from_secs(1), pin)?;
    let cpu0 = server.cpu();
    let run = wrk(server.addr, conns, window, pin)?;
    let cpu = server.cpu() - cpu0;
    Ok(Sample {
        msgs_per_s: run.requests as f64 / run.seconds,
        p50_us: run.p50_us,
        p99_us: run.p99_us,
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / run.requests as f64,
        ..Sample::default()
    })
}
