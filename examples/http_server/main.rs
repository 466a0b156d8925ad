//! HTTP server: a minimal HTTP/1.1 server on kingpin. `GET /` and `HEAD /` answer
//! `Hello, kingpin!`; keep-alive, pipelining and `Connection: close` work as HTTP/1.1 says;
//! other paths are 404, a malformed request 400 and an oversized head 431. See `http.rs` for
//! exactly what is accepted.
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8080 --threads 2
//! curl -i http://127.0.0.1:8080/            # HTTP/1.1 200 OK ... Hello, kingpin!
//! curl http://127.0.0.1:8080/hash/1000000   # XXH3 of 1 MB, worked out on a worker thread
//! wrk -t2 -c100 -d5s http://127.0.0.1:8080/
//! ```

#[path = "../common/cli.rs"]
#[allow(clippy::duplicate_mod)] // the echo bench includes both servers
mod cli;
mod head;
mod http;
mod request;

use std::net::SocketAddr;
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
}

/// Parses the arguments and serves until Ctrl+C; on a startup error prints one line and exits
/// 1. Returns a `Result` for the benchmark, which runs it in its own process.
pub fn main() -> std::io::Result<()> {
    run().unwrap_or_else(|e| cli::fail("http_server", e));
    Ok(())
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    // First, so that every thread started later (the logger's too) leaves the signals to it.
    let signals = SignalShutdown::install().map_err(cli::context("cannot watch for Ctrl+C"))?;
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| e.to_string())?;
    // A connection that sends nothing for this long is closed: idle keep-alive connections
    // and clients stuck in the middle of a request head do not pile up.
    // And one address cannot hold every descriptor (slowloris from one host).
    let per_ip = (args.max_conns_per_ip > 0).then_some(args.max_conns_per_ip);
    let mut config =
        ServerConfig::new(args.addr).idle_timeouts(IdleTimeouts::read(IDLE_TIMEOUT)).max_connections_per_ip(per_ip);
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
    let server = EpollTPServer::from_fn(config, http::HttpHandler::default)
        .start()
        .map_err(|e| cli::cannot_listen(args.addr, &e))?;
    signals.arm(server.shutdown_handle());
    println!(
        "http_server listening on http://{} with {} IO threads (Ctrl+C to stop)",
        server.local_addr(),
        server.loops().len()
    );
    server.join().map_err(cli::context("stopped with an error"))?;
    println!("stopped");
    Ok(())
}
