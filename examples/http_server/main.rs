//! HTTP server: a minimal HTTP/1.1 server on kingpin, over plain TCP or TLS. `GET /` and
//! `HEAD /` answer `Hello, kingpin!`; keep-alive, pipelining and `Connection: close` work as
//! HTTP/1.1 says; other paths are 404, a malformed request 400 and an oversized head 431. See
//! `http.rs` for exactly what is accepted.
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8080 --threads 2
//! curl -i http://127.0.0.1:8080/            # HTTP/1.1 200 OK ... Hello, kingpin!
//! curl http://127.0.0.1:8080/hash/1000000   # XXH3 of 1 MB, worked out on a worker thread
//! wrk -t2 -c100 -d5s http://127.0.0.1:8080/
//! ```
//!
//! # HTTPS
//!
//! With a certificate and its key (PEM), the server speaks TLS 1.2 and 1.3 (rustls) and offers
//! ALPN `http/1.1`; everything above works the same over it (the handler sees plaintext):
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8443 --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! For a quick try, `--self-signed` makes a fresh certificate for `localhost`, `127.0.0.1` and
//! `::1` (and the `--addr` IP, if it is another specific one) at each start. Its key stays in
//! memory; the certificate is written to `--self-signed-out` (default
//! `kingpin-self-signed.pem` in the current directory, replaced each run) for clients to trust,
//! and the server prints the curl line that does:
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8443 --self-signed
//! curl --cacert kingpin-self-signed.pem https://localhost:8443/
//! ```
//!
//! A handshake has 10 s to complete; one that fails (not TLS, no common version, a client that
//! does not trust the certificate) closes only its connection and is logged.
//!
//! # Deployment
//!
//! Started by systemd with a socket unit (`LISTEN_FDS`), it serves on that socket instead of
//! binding `--addr`. `kill -USR2 PID` restarts it without refusing or dropping a connection: a
//! new copy (same arguments) takes over the listening socket, this one drains and exits.
//! Behind HAProxy's `send-proxy-v2`, `--proxy-protocol required` makes the client's address
//! the peer's. See docs/deployment.md.

#[path = "../common/cli.rs"]
#[allow(clippy::duplicate_mod)] // the echo bench includes both servers
mod cli;
mod head;
mod http;
mod request;
#[path = "../common/restart.rs"]
#[allow(clippy::duplicate_mod)] // the benches include both servers
mod restart;
#[path = "../common/tls.rs"]
#[allow(clippy::duplicate_mod)] // the benches include both servers
mod tls;

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kingpin::{EpollTPServer, IdleTimeouts, ServerConfig, SignalShutdown};

/// How long a connection may stay silent before the server closes it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serve "Hello, kingpin!" over HTTP/1.1.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// IO threads (default: one per CPU).
    #[arg(long, value_parser = cli::at_least_one)]
    threads: Option<usize>,
    /// How connections are watched: `edge` (EPOLLET) or `level` (default: the library's).
    #[arg(long, value_parser = ["edge", "level"])]
    epoll: Option<String>,
    /// Most connections open at once from one peer address (0: no limit). One address cannot
    /// take every descriptor (IPv6 peers count by /64).
    #[arg(long, default_value_t = 256)]
    max_conns_per_ip: usize,
    /// Worker threads for `GET /hash/N` (default: one per CPU, at least 2).
    #[arg(long, value_parser = cli::at_least_one)]
    workers: Option<usize>,
    /// Hashes that may wait for a worker; beyond, `/hash/N` answers 503.
    #[arg(long, default_value_t = 64, value_parser = cli::at_least_one)]
    worker_queue: usize,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// `--tls-key`.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a fresh self-signed certificate for localhost, 127.0.0.1 and ::1, made
    /// at each start (for a quick try; the key is never written).
    #[arg(long)]
    self_signed: bool,
    /// Where `--self-signed` writes its certificate (PEM) for clients to trust, replacing the
    /// file [default: kingpin-self-signed.pem].
    #[arg(long, value_name = "FILE")]
    self_signed_out: Option<PathBuf>,
    /// Behind a load balancer that sends the PROXY protocol header (HAProxy's `send-proxy` or
    /// `send-proxy-v2`): `required` or `optional`.
    #[arg(long, value_parser = ["required", "optional"])]
    proxy_protocol: Option<String>,
}

/// Where `--self-signed` writes its certificate unless told otherwise (current directory).
const SELF_SIGNED_OUT: &str = "kingpin-self-signed.pem";

/// What the server speaks, from the arguments.
enum Tls {
    /// Plain HTTP.
    Off,
    /// HTTPS with the certificate of `--tls-cert`.
    Files(Arc<rustls::ServerConfig>),
    /// HTTPS with a self-signed certificate, written to this file.
    SelfSigned(Arc<rustls::ServerConfig>, PathBuf),
}

impl Tls {
    fn config(&self) -> Option<Arc<rustls::ServerConfig>> {
        match self {
            Tls::Off => None,
            Tls::Files(c) | Tls::SelfSigned(c, _) => Some(c.clone()),
        }
    }
}

/// The TLS the arguments ask for: certificate files read, or a certificate made and written.
fn tls_from(args: &Args) -> Result<Tls, String> {
    const ALPN: &[&[u8]] = &[b"http/1.1"];
    match (&args.tls_cert, &args.tls_key, args.self_signed) {
        (Some(_), _, true) | (_, Some(_), true) => {
            Err("--self-signed makes its own certificate: give it or --tls-cert/--tls-key, not both".into())
        }
        (None, None, true) => {
            let out = args.self_signed_out.clone().unwrap_or_else(|| SELF_SIGNED_OUT.into());
            let (config, pem) = tls::self_signed_for(&self_signed_names(args.addr.ip()), ALPN)?;
            std::fs::write(&out, pem)
                .map_err(cli::context(format!("cannot write the certificate to {}", out.display())))?;
            // The absolute path, for the curl line to work from any directory.
            Ok(Tls::SelfSigned(config, std::fs::canonicalize(&out).unwrap_or(out)))
        }
        _ if args.self_signed_out.is_some() => Err("--self-signed-out goes with --self-signed".into()),
        (Some(cert), Some(key), false) => {
            readable("--tls-cert", cert)?;
            readable("--tls-key", key)?;
            Ok(Tls::Files(tls::server_config_from_files(cert, key, ALPN)?))
        }
        (Some(_), None, false) => Err("--tls-cert needs --tls-key FILE (the certificate's private key, PEM)".into()),
        (None, Some(_), false) => Err("--tls-key needs --tls-cert FILE (the certificate chain, PEM)".into()),
        (None, None, false) => Ok(Tls::Off),
    }
}

/// Fails with a plain line when `path` (given as `flag`) cannot be opened.
fn readable(flag: &str, path: &Path) -> Result<(), String> {
    File::open(path).map(drop).map_err(cli::context(format!("{flag} {}: cannot read it", path.display())))
}

/// The names a self-signed certificate is valid for: the loopback names, and the address the
/// server listens on when it is another specific one.
fn self_signed_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !listen.is_unspecified() && !listen.is_loopback() {
        names.push(listen.to_string());
    }
    names
}

/// The URL a client on this machine reaches the server at, by a name its self-signed
/// certificate is valid for.
fn https_url(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() || ip.is_loopback() => format!("https://localhost:{}/", addr.port()),
        _ => format!("https://{addr}/"),
    }
}

/// `s` as one word for a shell: as it is when that is safe, else in single quotes.
fn shell_quoted(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Parses the arguments and serves until Ctrl+C; on a startup error prints one line and exits
/// 1. Returns a `Result` for the benchmark, which runs it in its own process.
pub fn main() -> std::io::Result<()> {
    run().unwrap_or_else(|e| cli::fail("http_server", e));
    Ok(())
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    // Before anything starts: a bad certificate or flag is the one line printed.
    let tls = tls_from(&args)?;
    // Inherited listening sockets (systemd's, or a predecessor's): reading them edits the
    // environment, so before any thread starts.
    let config = restart::inherited_listeners(ServerConfig::new(args.addr))?;
    // Then the signals, so that every thread started later (the logger's, each other's too)
    // leaves them to their watchers. SIGUSR2 hands the listeners to a new copy of the program.
    let handover = restart::on_sigusr2_hand_over("http_server")?;
    let signals = SignalShutdown::install().map_err(cli::context("cannot watch for Ctrl+C"))?;
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| e.to_string())?;
    // A connection that sends nothing for this long is closed: idle keep-alive connections
    // and clients stuck in the middle of a request head do not pile up.
    // And one address cannot hold every descriptor (slowloris from one host).
    let per_ip = (args.max_conns_per_ip > 0).then_some(args.max_conns_per_ip);
    let mut config = config.idle_timeouts(IdleTimeouts::read(IDLE_TIMEOUT)).max_connections_per_ip(per_ip);
    config = config.proxy_protocol(match args.proxy_protocol.as_deref() {
        Some("required") => kingpin::ProxyProtocol::Required,
        Some("optional") => kingpin::ProxyProtocol::Optional,
        _ => kingpin::ProxyProtocol::Off,
    });
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    if let Some(n) = args.workers {
        config = config.worker_threads(n);
    }
    config = config.worker_queue(args.worker_queue);
    if let Some(mode) = &args.epoll {
        config = config.edge_triggered(mode == "edge");
    }
    if let Some(tls) = tls.config() {
        config = config.tls(tls);
    }
    let server = EpollTPServer::from_fn(config, http::HttpHandler::default)
        .start()
        .map_err(|e| cli::cannot_listen(args.addr, &e))?;
    signals.arm(server.shutdown_handle());
    let _ = handover.set(server.handover());
    let scheme = if matches!(tls, Tls::Off) { "http" } else { "https" };
    println!(
        "http_server listening on {scheme}://{} with {} IO threads (Ctrl+C to stop)",
        server.local_addr(),
        server.loops().len()
    );
    if let Tls::SelfSigned(_, pem) = &tls {
        let pem = shell_quoted(&pem.display().to_string());
        println!(
            "self-signed certificate in {pem}; trust it with: curl --cacert {pem} {}",
            https_url(server.local_addr())
        );
    }
    server.join().map_err(cli::context("stopped with an error"))?;
    restart::wait_for_handover_report();
    println!("stopped");
    Ok(())
}
