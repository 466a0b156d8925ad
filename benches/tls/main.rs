//! TLS benchmarks (`cargo bench --bench tls`, part of `make bench`): kingpin against nginx and
//! tokio-rustls, every server a child process pinned to CPU 1 with one thread, the load pinned
//! to CPU 0, servers alternating within each repetition, same certificate (ECDSA P-256 from
//! rcgen), TLS 1.3, the suite the client prefers (checked and printed).
//!
//! Shapes:
//! - **keep-alive**: `wrk -t1 -c100` over HTTPS on a "hello" response: server CPU per request,
//!   `examples/http_server` against nginx (`return 200`).
//! - **handshake**: the same with `Connection: close`, a new TLS connection per request:
//!   server CPU per handshake, and handshakes/s.
//! - **bulk**: 16 KiB records echoed through `examples/echo_server` against a tokio-rustls echo
//!   server: server CPU per MiB echoed.
//! - **idle**: 10,000 TLS connections held (handshake done, one request answered): server RSS
//!   per connection, kingpin `http_server` against nginx.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it only smoke-tests the code: the
//! bulk and idle shapes, briefly, and writes nothing. `BENCH_QUICK=1` runs each shape briefly (the CI smoke run: it prints figures, not targets);
//! `BENCH_REPS` sets the repetitions (default 3). Shapes that need `wrk` or nginx are skipped,
//! with the reason printed, where they are not installed (`apt-get install wrk nginx-light`).
//! A full run writes `docs/tls-performance.md`.

#[path = "../../examples/echo_server.rs"]
mod kingpin_echo_server;
// Its unit tests and test helpers are compiled in too, unused here.
#[allow(dead_code, unused_imports)]
#[path = "../../examples/http_server/main.rs"]
mod kingpin_http_server;
#[path = "../common/process.rs"]
mod process;
#[path = "../../examples/common/tls.rs"]
#[allow(clippy::duplicate_mod)] // echo_server includes it too
mod tls_config;
#[path = "../peers/tokio_rustls_echo.rs"]
mod tokio_rustls_echo;
#[path = "../common/wrk_time.rs"]
mod wrk_time;

mod bulk;
mod idle;
mod report;
mod servers;
mod wrk;

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use process::{pin_to_cpu, raise_nofile};
use report::Figures;
use servers::{ServerKind, SERVE_ENV};

/// How long and how often.
pub struct Plan {
    /// A smoke test (`cargo test`): no `wrk` shapes, tiny windows.
    pub smoke: bool,
    pub quick: bool,
    pub reps: usize,
    pub window: Duration,
    pub idle_conns: usize,
    pub bulk_conns: usize,
}

fn plan() -> Plan {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = smoke || std::env::var_os("BENCH_QUICK").is_some();
    let reps = std::env::var("BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(if quick { 1 } else { 3 });
    Plan {
        smoke,
        quick,
        reps: reps.max(1),
        window: Duration::from_millis(if smoke {
            300
        } else if quick {
            1000
        } else {
            5000
        }),
        idle_conns: if smoke {
            50
        } else if quick {
            300
        } else {
            10_000
        },
        bulk_conns: 4,
    }
}

/// The certificate and key every server uses, as files.
pub struct Cert {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub pem: String,
}

fn make_cert() -> io::Result<Cert> {
    let dir = std::env::temp_dir().join(format!("kingpin-tls-bench-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert_path, cert.pem())?;
    fs::write(&key_path, signing_key.serialize_pem())?;
    Ok(Cert { dir, cert: cert_path, key: key_path, pem: cert.pem() })
}

/// Runs in a server child (pinned by the harness before exec).
fn serve(kind: &str) -> io::Result<()> {
    match kind {
        "kingpin-http" => kingpin_http_server::main(),
        "kingpin-echo" => kingpin_echo_server::main(),
        "tokio-rustls" => {
            let args: Vec<String> = std::env::args().collect();
            let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
            let addr: SocketAddr =
                arg("--addr").unwrap_or_else(|| "127.0.0.1:0".into()).parse().map_err(io::Error::other)?;
            let (cert, key) = (arg("--tls-cert").unwrap_or_default(), arg("--tls-key").unwrap_or_default());
            let config =
                tls_config::server_config_from_files(cert.as_ref(), key.as_ref(), &[]).map_err(io::Error::other)?;
            tokio_rustls_echo::run(addr, config)
        }
        other => Err(io::Error::other(format!("unknown server {other}"))),
    }
}

fn main() {
    if let Ok(kind) = std::env::var(SERVE_ENV) {
        if let Err(e) = serve(&kind) {
            eprintln!("{kind} server: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo bench` passes `--bench`; a filter naming another bench skips this one.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"tls".contains(a.as_str())) {
        return;
    }
    if let Err(e) = run() {
        eprintln!("tls bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let plan = plan();
    raise_nofile();
    let pin = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    if pin {
        pin_to_cpu(0);
    }
    let cert = make_cert()?;
    let log = cert.dir.join("servers.log");
    let mut figures = Figures::default();
    let web = [ServerKind::KingpinHttp, ServerKind::Nginx];
    let missing =
        if plan.smoke { Some("a smoke test (run with --bench for them)".into()) } else { wrk::missing_tools() };
    if let Some(why) = &missing {
        eprintln!("HTTPS shapes skipped: {why}");
    }
    for kind in [ServerKind::KingpinHttp, ServerKind::Nginx, ServerKind::KingpinEcho, ServerKind::TokioRustls] {
        if kind == ServerKind::Nginx && missing.is_some() {
            continue;
        }
        let server = servers::start(kind, pin, &cert, &log)?;
        let suite = servers::negotiated(server.addr, &cert.pem)?;
        eprintln!("{}: {suite}", kind.name());
        figures.suites.push((kind, suite));
    }
    for rep in 0..plan.reps {
        // Alternate the order each repetition, so neither server always runs first.
        let order: Vec<ServerKind> = if rep % 2 == 0 { web.to_vec() } else { web.iter().rev().copied().collect() };
        if missing.is_none() {
            for &kind in &order {
                let server = servers::start(kind, pin, &cert, &log)?;
                let keep = wrk::measure(&server, 100, false, plan.window, pin)?;
                eprintln!("rep {rep} keep-alive  {:<28} {keep}", kind.name());
                figures.keep_alive.entry(kind).or_default().push(keep);
                let fresh = wrk::measure(&server, 100, true, plan.window, pin)?;
                eprintln!("rep {rep} handshake   {:<28} {fresh}", kind.name());
                figures.handshake.entry(kind).or_default().push(fresh);
            }
        }
        let echo = [ServerKind::KingpinEcho, ServerKind::TokioRustls];
        let order: Vec<ServerKind> = if rep % 2 == 0 { echo.to_vec() } else { echo.iter().rev().copied().collect() };
        for &kind in &order {
            let server = servers::start(kind, pin, &cert, &log)?;
            let sample = bulk::measure(&server, &cert.pem, plan.bulk_conns, plan.window)?;
            eprintln!("rep {rep} bulk        {:<28} {sample}", kind.name());
            figures.bulk.entry(kind).or_default().push(sample);
        }
        let idle_kinds: Vec<ServerKind> = order_idle(rep, missing.is_none());
        for kind in idle_kinds {
            let server = servers::start(kind, pin, &cert, &log)?;
            let bytes = idle::measure(&server, &cert.pem, plan.idle_conns)?;
            eprintln!("rep {rep} idle        {:<28} {:.0} B per connection", kind.name(), bytes);
            figures.idle.entry(kind).or_default().push(bytes);
        }
    }
    let text = report::render(&plan, &figures);
    println!("{text}");
    if !plan.quick {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs").join("tls-performance.md");
        fs::write(&path, &text)?;
        eprintln!("wrote {}", path.display());
    }
    let _ = fs::remove_dir_all(&cert.dir);
    Ok(())
}

/// The servers of the idle shape, alternating.
fn order_idle(rep: usize, nginx: bool) -> Vec<ServerKind> {
    let mut kinds = vec![ServerKind::KingpinHttp];
    if nginx {
        kinds.push(ServerKind::Nginx);
    }
    if rep % 2 == 1 {
        kinds.reverse();
    }
    kinds
}
