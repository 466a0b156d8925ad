//! The HTTPS shapes: `wrk` on one thread (pinned to CPU 0) with 100 connections, keep-alive
//! or `Connection: close` (a new TLS connection, so a full handshake, per request); server
//! CPU per request over the measured window.

use std::fmt;
use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{child_setup, Server};
use crate::wrk_time::micros;

/// What one measured `wrk` run gave.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebSample {
    pub requests_per_s: f64,
    pub cpu_us_per_request: f64,
    pub p99_us: f64,
}

impl fmt::Display for WebSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9.0} req/s  {:>7.2} µs CPU/req  p99 {:>8.0} µs",
            self.requests_per_s, self.cpu_us_per_request, self.p99_us
        )
    }
}

/// Why the HTTPS shapes cannot run here, if they cannot.
pub fn missing_tools() -> Option<String> {
    let have = |tool: &str, arg: &str| {
        Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    let missing: Vec<&str> = [("wrk", "--version"), ("nginx", "-v")]
        .into_iter()
        .filter(|(tool, arg)| !have(tool, arg))
        .map(|(tool, _)| tool)
        .collect();
    (!missing.is_empty()).then(|| format!("{} not installed (apt-get install wrk nginx-light)", missing.join(" and ")))
}

/// Runs `wrk` and returns (requests, seconds, p99 µs).
fn wrk(server: &Server, conns: usize, close: bool, duration: Duration, pin: bool) -> io::Result<(u64, f64, f64)> {
    let secs = duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency"]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("https://{}/", server.addr));
    child_setup(&mut cmd, pin.then_some(0));
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr))));
    }
    let (mut requests, mut seconds, mut p99) = (0, secs as f64, f64::NAN);
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", t, ..] => {
                requests = n.parse().unwrap_or(0);
                seconds = micros(t.trim_end_matches(',')) / 1e6;
            }
            ["99%", v] => p99 = micros(v),
            _ => {}
        }
        if line.contains("Non-2xx") || line.contains("Socket errors") && !close {
            return Err(io::Error::other(format!("wrk saw errors: {line}")));
        }
    }
    if requests == 0 {
        return Err(io::Error::other(format!("no requests in wrk's output: {text}")));
    }
    Ok((requests, seconds, p99))
}

/// A one-second warm-up, then `window` measured: server CPU per request.
pub fn measure(server: &Server, conns: usize, close: bool, window: Duration, pin: bool) -> io::Result<WebSample> {
    wrk(server, conns, close, Duration::from_secs(1), pin)?;
    let cpu0 = server.cpu();
    let (requests, seconds, p99_us) = wrk(server, conns, close, window, pin)?;
    let cpu = server.cpu() - cpu0;
    Ok(WebSample {
        requests_per_s: requests as f64 / seconds,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests as f64,
        p99_us,
    })
}
