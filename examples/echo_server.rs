//! Echo server: sends every byte back. The load tools and benchmarks drive this one.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000 --threads 4
//! cargo run --release --example echo_server -- --tls-cert cert.pem --tls-key key.pem   # over TLS
//! ```
//!
//! A startup error (the address is in use, a bad `KINGPIN_LOG`) prints one line and exits 1.
//!
//! Started by systemd with a socket unit (`LISTEN_FDS`), it accepts on that socket instead of
//! binding `--addr`. `kill -USR2 PID` restarts it without dropping a connection: a new copy
//! takes over the listening socket, this one drains its connections and exits.

#[path = "common/cli.rs"]
#[allow(clippy::duplicate_mod)] // the echo bench includes both servers
mod cli;
#[path = "common/restart.rs"]
#[allow(clippy::duplicate_mod)] // the benches include both servers
mod restart;
#[path = "common/tls.rs"]
#[allow(clippy::duplicate_mod)] // the benches include both servers
mod tls;

use std::net::SocketAddr;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use clap::Parser;
use kingpin::{AcceptStrategy, Conn, EpollTPServer, IoHandler, ServerConfig, SignalShutdown};

/// Echo every byte back to its sender.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// IO threads (default: one per CPU).
    #[arg(long, value_parser = cli::at_least_one)]
    threads: Option<usize>,
    /// How connections are watched: `edge` (EPOLLET) or `level` (default: the library's).
    #[arg(long, value_parser = ["edge", "level"])]
    epoll: Option<String>,
    /// How the IO threads share accepting: `mutex` (the default), `exclusive`
    /// (EPOLLEXCLUSIVE) or `reuseport` (SO_REUSEPORT).
    #[arg(long, value_parser = ["mutex", "exclusive", "reuseport"])]
    accept: Option<String>,
    /// Most connections open at once from one peer address (0: no limit). One address cannot
    /// take every descriptor (IPv6 peers count by /64).
    #[arg(long, default_value_t = 256)]
    max_conns_per_ip: usize,
    /// Serve TLS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Behind a load balancer that sends the PROXY protocol header (HAProxy's `send-proxy` or
    /// `send-proxy-v2`): `required` or `optional`.
    #[arg(long, value_parser = ["required", "optional"])]
    proxy_protocol: Option<String>,
}

/// Connections accepted by each IO thread, printed when the server stops.
type Accepted = [AtomicU64];

struct Echo(Arc<Accepted>);

impl IoHandler for Echo {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0[conn.loop_index()].fetch_add(1, Relaxed);
        if let Some(balancer) = conn.proxied_by() {
            log::debug!(target: "echo_server", "connection from {} via {balancer}", conn.peer_addr());
        }
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// Runs the server until Ctrl+C; on a startup error prints one line and exits 1. Returns a
/// `Result` for the benchmark, which runs it in its own process.
pub fn main() -> std::io::Result<()> {
    run().unwrap_or_else(|e| cli::fail("echo_server", e));
    Ok(())
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    // Inherited listening sockets first: reading them edits the environment.
    let config = restart::inherited_listeners(ServerConfig::new(args.addr))?;
    // Then the signals, so that every thread started later (the logger's, each other's too)
    // leaves them to their watchers.
    let handover = restart::on_sigusr2_hand_over("echo_server")?;
    let signals = SignalShutdown::install().map_err(cli::context("cannot watch for Ctrl+C"))?;
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| e.to_string())?;
    let per_ip = (args.max_conns_per_ip > 0).then_some(args.max_conns_per_ip);
    let mut config = config.max_connections_per_ip(per_ip);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.tls(tls::server_config_from_files(cert, key, &[])?);
    }
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    config = config.proxy_protocol(match args.proxy_protocol.as_deref() {
        Some("required") => kingpin::ProxyProtocol::Required,
        Some("optional") => kingpin::ProxyProtocol::Optional,
        _ => kingpin::ProxyProtocol::Off,
    });
    if let Some(mode) = &args.epoll {
        config = config.edge_triggered(mode == "edge");
    }
    config = config.accept_strategy(match args.accept.as_deref() {
        Some("exclusive") => AcceptStrategy::EpollExclusive,
        Some("reuseport") => AcceptStrategy::ReusePort,
        _ => AcceptStrategy::Mutex,
    });
    let accepted: Arc<Accepted> = (0..config.get_threads()).map(|_| AtomicU64::new(0)).collect();
    let server = EpollTPServer::new(config, Arc::clone(&accepted), |a| Echo(a.clone()))
        .start()
        .map_err(|e| cli::cannot_listen(args.addr, &e))?;
    signals.arm(server.shutdown_handle());
    let _ = handover.set(server.handover());
    println!(
        "echo_server listening on {}{} with {} IO threads (Ctrl+C to stop)",
        server.local_addr(),
        if args.tls_cert.is_some() { " (TLS)" } else { "" },
        server.loops().len()
    );
    server.join().map_err(cli::context("stopped with an error"))?;
    restart::wait_for_handover_report();
    let counts: Vec<String> = accepted.iter().map(|n| n.load(Relaxed).to_string()).collect();
    println!("stopped; connections accepted per IO thread: {}", counts.join(" "));
    Ok(())
}
